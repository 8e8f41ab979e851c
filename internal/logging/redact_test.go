package logging

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/v1/notes", "/v1/notes"},
		{"/v1/notes?limit=10&cursor=abc", "/v1/notes?limit=10&cursor=abc"},
		{"/status?token=s3cr3t", "/status?token=[redacted]"},
		{"/x?Access_Token=a&API-KEY=b&password=c&client_secret=d&auth=e&X-Amz-Signature=f&q=keep",
			"/x?Access_Token=[redacted]&API-KEY=[redacted]&password=[redacted]&client_secret=[redacted]&auth=[redacted]&X-Amz-Signature=[redacted]&q=keep"},
		{"/x?%74oken=escaped-name", "/x?%74oken=[redacted]"}, // %74 is t
		{"/x?token", "/x?token"},                             // no value to hide
		{"/x?token=&a=1", "/x?token=[redacted]&a=1"},
		{"/x?bad%zzname=1&token=t", "/x?bad%zzname=1&token=[redacted]"},
		{"/a%2Fb/c?x=1", "/a%2Fb/c?x=1"}, // the path as sent
		// What other parsers read as a pair: ; between query parameters, path parameters.
		{"/status?x=1;token=s3cr3t", "/status?x=1;token=[redacted]"},
		{"/v1/notes?limit=5;access_token=t&q=1;k=2", "/v1/notes?limit=5;access_token=[redacted]&q=1;k=2"},
		{"/status;token=s3cr3t", "/status;token=[redacted]"},
		{"/a;x=1;password=p/b;session_key=k/c", "/a;x=1;password=[redacted]/b;session_key=[redacted]/c"},
		{"/v1/notes/token=abc", "/v1/notes/token=abc"}, // a segment, not a parameter
		{"/x;;token=t;", "/x;;token=[redacted];"},
		{"/x?;&token=t&&", "/x?;&token=[redacted]&&"},
		{"/", "/"},
		{"/a//b;token=t", "/a//b;token=[redacted]"},
		// Raw bytes in a query (net/http passes them): C1 CSI, NEL, a bidi override, é, a lone byte.
		{"/v1/notes?x=\xc2\x9b31mRED\xc2\x9b0m&y=\xc2\x85&z=\xe2\x80\xaeabc", "/v1/notes?x=%C2%9B31mRED%C2%9B0m&y=%C2%85&z=%E2%80%AEabc"},
		{"/x?q=caf\xc3\xa9;token=\xff", "/x?q=caf%C3%A9;token=[redacted]"},
		{"/caf%C3%A9?q=%C3%A9", "/caf%C3%A9?q=%C3%A9"}, // encoded already: as sent
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got := RedactURI(u); got != tt.want {
			t.Errorf("RedactURI(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	long := &url.URL{Path: "/x", RawQuery: "q=" + strings.Repeat("a", 5000)}
	if got := RedactURI(long); len(got) != maxURILen || !strings.HasSuffix(got, "...") {
		t.Errorf("long URI: %d bytes, want %d ending in ...", len(got), maxURILen)
	}
}

func TestLooksSecret(t *testing.T) {
	for name, want := range map[string]bool{
		"token": true, "X-Auth-Token": true, "apikey": true, "Password": true, "passwd": true,
		"client_secret": true, "Authorization": true, "X-Amz-Credential": true,
		"limit": false, "cursor": false, "q": false, "id": false,
	} {
		if got := LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}
