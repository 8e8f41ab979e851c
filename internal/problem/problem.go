// Package problem writes error responses as RFC 9457 problem details
// (media type application/problem+json), so every error a client sees has
// the same machine-readable shape:
//
//	{
//	  "type": "/problems/not-found",
//	  "title": "Resource not found",
//	  "status": 404,
//	  "detail": "no note has id \"abc\"",
//	  "instance": "/v1/notes/abc",
//	  "request_id": "0190c6f2-...",
//	  "errors": [{"field": "title", "message": "is required"}]
//	}
//
// Clients switch on "type" (stable, listed in Types) and "status"; "title" is
// a fixed human summary of the type; "detail" explains this occurrence and
// may change wording between releases; "request_id" matches the X-Request-ID
// response header and the request_id in the server's logs, so a user can quote
// it in a bug report.
package problem

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/jsonstr"
	"github.com/prodready/service/internal/logging"
)

// ContentType is the media type of every problem response (RFC 9457 §3).
// JSON is always UTF-8 (RFC 8259), so no charset parameter is sent.
const ContentType = "application/problem+json"

// TypePrefix starts every problem type URI. RFC 9457 §3.1.1 recommends
// absolute URIs but allows relative ones that carry the full path, which
// works for every clone of this service without owning a domain. A team that
// publishes documentation for its problem types at, say,
// https://api.example.com/problems/ can change this one constant.
const TypePrefix = "/problems/"

// Stable problem type URIs. They are part of the API contract: never rename
// one, add a new type instead.
const (
	TypeBadRequest           = TypePrefix + "bad-request"
	TypeValidation           = TypePrefix + "validation-failed"
	TypeNotFound             = TypePrefix + "not-found"
	TypeMethodNotAllowed     = TypePrefix + "method-not-allowed"
	TypePreconditionFailed   = TypePrefix + "precondition-failed"
	TypePreconditionRequired = TypePrefix + "precondition-required"
	TypePayloadTooLarge      = TypePrefix + "payload-too-large"
	TypeUnsupportedMediaType = TypePrefix + "unsupported-media-type"
	TypeInternal             = TypePrefix + "internal"
	TypeUnavailable          = TypePrefix + "unavailable"
	TypeOverloaded           = TypePrefix + "overloaded"
	TypeClientClosedRequest  = TypePrefix + "client-closed-request"
	TypeRequestTimeout       = TypePrefix + "request-timeout"
	TypeHeadersTooLarge      = TypePrefix + "headers-too-large"
	TypeExpectationFailed    = TypePrefix + "expectation-failed"
	TypeUnauthorized         = TypePrefix + "unauthorized"
	TypeTooManyRequests      = TypePrefix + "too-many-requests"
)

// StatusClientClosedRequest is nginx's 499: the client hung up before the
// answer was ready. It is not an HTTP status a client ever reads; it is
// what the access log records, so that a client going away is not counted
// as the server failing.
const StatusClientClosedRequest = 499

// TypeInfo documents one problem type: the fixed title and status that go
// with its URI, and what a client should do about it.
type TypeInfo struct {
	URI    string
	Title  string
	Status int
	Advice string
}

// Types lists every problem type the service sends, in one place a client
// developer can read. The helpers below take title and status from it, so the
// documentation and the responses cannot disagree.
var Types = []TypeInfo{
	{TypeBadRequest, "Malformed request", http.StatusBadRequest,
		"The request could not be read (bad JSON, bad header). Fix the request; retrying it unchanged fails again."},
	{TypeValidation, "Validation failed", http.StatusBadRequest,
		"The request was readable but some fields are invalid; \"errors\" lists each field and why."},
	{TypeNotFound, "Resource not found", http.StatusNotFound,
		"No resource at this path, or the note does not exist (any more)."},
	{TypeMethodNotAllowed, "Method not allowed", http.StatusMethodNotAllowed,
		"The path exists but not for this method; the Allow header lists the methods that work."},
	{TypePreconditionFailed, "Precondition failed", http.StatusPreconditionFailed,
		"If-Match named a version that is no longer current: someone else changed the note. GET it again, reapply your change, and retry with the new ETag."},
	{TypePreconditionRequired, "Precondition required", http.StatusPreconditionRequired,
		"This request must carry If-Match with the ETag from your last GET (or * to overwrite blindly), so concurrent edits are not lost."},
	{TypePayloadTooLarge, "Request body too large", http.StatusRequestEntityTooLarge,
		"The body is over the server's size limit, given in \"detail\"."},
	{TypeUnsupportedMediaType, "Unsupported media type", http.StatusUnsupportedMediaType,
		"Send the body as JSON with Content-Type: application/json."},
	{TypeInternal, "Internal server error", http.StatusInternalServerError,
		"Something failed on the server. Retrying may help; if it persists, report the request_id."},
	{TypeUnavailable, "Service unavailable", http.StatusServiceUnavailable,
		"A dependency (the database) did not answer in time. Retry after the seconds in the Retry-After header. A write answered this way may or may not have been applied: GET before repeating a create, and send updates with If-Match."},
	{TypeOverloaded, "Service overloaded", http.StatusServiceUnavailable,
		"The server is at capacity and refused the request before doing anything: retry after the seconds in Retry-After, with backoff."},
	{TypeRequestTimeout, "Request timeout", http.StatusRequestTimeout,
		"The body did not arrive within the server's read timeout. Send it at once, on a new connection."},
	{TypeHeadersTooLarge, "Request headers too large", http.StatusRequestHeaderFieldsTooLarge,
		"The request line and headers together are over the server's limit, given in \"detail\". Send fewer or shorter headers (a cookie that grew, say)."},
	{TypeExpectationFailed, "Expectation failed", http.StatusExpectationFailed,
		"The request's Expect header asked for something other than 100-continue, the only expectation the server meets. Send it without Expect."},
	{TypeUnauthorized, "Unauthorized", http.StatusUnauthorized,
		"This route is for the operators: send Authorization: Bearer <a status token> (status.tokens)."},
	{TypeTooManyRequests, "Too many requests", http.StatusTooManyRequests,
		"This address sent too many wrong tokens: wait the seconds in Retry-After. A right token is still served."},
	{TypeClientClosedRequest, "Client closed request", StatusClientClosedRequest,
		"The client went away before the answer was ready; no client reads this one. The access log records it at info."},
}

// FieldError names one invalid field. It has the same shape as
// notes.FieldError, so a notes.FieldError converts with problem.FieldError(fe);
// this package does not import notes to stay usable by every resource.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is one RFC 9457 problem details object plus two extension members,
// request_id and errors.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance"`
	RequestID string       `json:"request_id"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// New returns the problem of the given registered type with detail filled in.
// It panics when typ is not in Types: that is a programming error that every
// test hitting the code path would catch.
func New(typ, detail string) Problem {
	for _, t := range Types {
		if t.URI == typ {
			return Problem{Type: t.URI, Title: t.Title, Status: t.Status, Detail: detail}
		}
	}
	panic("problem: unregistered type " + typ)
}

// BadRequest is for a request that cannot be read at all: malformed JSON,
// unknown fields, a malformed header. detail says what is wrong and where.
func BadRequest(detail string) Problem { return New(TypeBadRequest, detail) }

// Invalid is for a readable request whose fields break the rules; errs
// lists every offending field (body fields or query parameters alike).
func Invalid(errs ...FieldError) Problem {
	p := New(TypeValidation, "one or more fields are invalid; see errors")
	p.Errors = errs
	return p
}

// NotFound is for an unknown path or an unknown resource id.
func NotFound(detail string) Problem { return New(TypeNotFound, detail) }

// MethodNotAllowed is for a known path used with the wrong method; the
// caller (gin, with HandleMethodNotAllowed) sets the Allow header.
func MethodNotAllowed(method string) Problem {
	return New(TypeMethodNotAllowed, fmt.Sprintf("%s is not supported on this path; see the Allow header", method))
}

// PayloadTooLarge is for a body over limit bytes.
func PayloadTooLarge(limit int64) Problem {
	return New(TypePayloadTooLarge, fmt.Sprintf("request body must be at most %d bytes", limit))
}

// UnsupportedMediaType is for a body that is not sent as JSON.
func UnsupportedMediaType(detail string) Problem { return New(TypeUnsupportedMediaType, detail) }

// PreconditionFailed is for an If-Match that does not match the current version.
func PreconditionFailed(detail string) Problem { return New(TypePreconditionFailed, detail) }

// PreconditionRequired is for a write that must carry If-Match but does not.
func PreconditionRequired(detail string) Problem { return New(TypePreconditionRequired, detail) }

// Internal is for every unexpected failure. It takes no detail on purpose:
// error text from a database or a panic can reveal internals (hosts, table
// names, queries), so it goes to the logs, tied to the response by
// request_id, and never to the client.
func Internal() Problem {
	return New(TypeInternal, "the server failed to handle the request; quote request_id when reporting it")
}

// Unavailable is for a dependency that did not answer in time or at all;
// the caller sets Retry-After. detail must not quote the dependency's error.
func Unavailable(detail string) Problem { return New(TypeUnavailable, detail) }

// ClientClosed is for a request whose client disconnected while it was being
// served: the work was cancelled with the request's context. It is logged at
// info and never alerted on, since nothing failed on the server.
func ClientClosed() Problem {
	return New(TypeClientClosedRequest, "the client closed the connection before the response was ready")
}

// RequestTimeout is for a request whose body did not arrive within the
// server's read timeout: the client is still there, it was too slow.
func RequestTimeout() Problem {
	return New(TypeRequestTimeout, "the request body did not arrive within the read timeout")
}

// Unauthorized is the 401 of a route for the operators asked without a
// right token.
func Unauthorized(detail string) Problem { return New(TypeUnauthorized, detail) }

// TooManyRequests is the 429 of an address blocked for its wrong tokens.
func TooManyRequests(detail string) Problem { return New(TypeTooManyRequests, detail) }

// Overloaded is for a request refused by load shedding; nothing was done,
// so it is safe to retry. The caller sets Retry-After.
func Overloaded(detail string) Problem { return New(TypeOverloaded, detail) }

// Write sends p as the response and aborts the rest of the gin chain.
// It fills RequestID from the request context (see logging.WithRequestID)
// and Instance from the request path, so callers only describe the problem.
//
// A zero Status becomes 500, and a missing Type becomes "about:blank", the
// RFC 9457 default meaning "nothing beyond the status code".
//
// If the response has already started (headers sent), the status can no
// longer change; Write then only aborts the chain.
func Write(c *gin.Context, p Problem) {
	c.Abort()
	if c.Writer.Written() {
		return
	}
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.RequestID = logging.RequestID(c.Request.Context())
	p.Instance = c.Request.URL.EscapedPath()

	c.Data(p.Status, ContentType, p.marshal())
}

// JSON is the problem's body as Write sends it, for an answer written
// outside gin (server.Refusals).
func (p Problem) JSON() []byte { return p.marshal() }

// marshal is json.Marshal(p), byte for byte (TestMarshalIsJSONMarshal),
// written directly for a problem without field errors: every refused,
// missing or malformed request gets one, and encoding/json's reflection
// over the struct was a tenth of what a 503 from load shedding cost. Marshalling a struct of
// strings and ints cannot fail; invalid UTF-8 is replaced, not reported.
func (p Problem) marshal() []byte {
	if len(p.Errors) > 0 {
		body, _ := json.Marshal(p)
		return body
	}
	b := make([]byte, 0, 64+len(p.Type)+len(p.Title)+len(p.Detail)+len(p.Instance)+len(p.RequestID))
	b = append(b, '{')
	b = jsonstr.AppendHTMLField(b, "type", p.Type)
	b = jsonstr.AppendHTMLField(b, "title", p.Title)
	b = jsonstr.AppendIntField(b, "status", int64(p.Status))
	if p.Detail != "" {
		b = jsonstr.AppendHTMLField(b, "detail", p.Detail)
	}
	b = jsonstr.AppendHTMLField(b, "instance", p.Instance)
	b = jsonstr.AppendHTMLField(b, "request_id", p.RequestID)
	return append(b, '}')
}
