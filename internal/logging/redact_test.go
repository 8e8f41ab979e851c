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
