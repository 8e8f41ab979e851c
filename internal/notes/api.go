package notes

// HTTP handlers for /v1/notes. Each Handle* constructor takes its
// dependencies and returns a gin.HandlerFunc, so a handler's needs are
// visible in its signature and tests can pass fakes. Routes (routes.go)
// mounts them, and Resource (resource.go) hands Routes to the service.
//
// Conditional requests use the note's Version as a strong ETag, "3" for
// version 3:
//   - GET answers 304 Not Modified when If-None-Match names the current version;
//   - PUT must send If-Match (428 without it) and gets 412 when the note
//     changed since the client read it, so concurrent edits are not lost;
//   - DELETE may send If-Match, under the same 412 rule.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/problem"
)

// APIOptions are the settings the handlers need besides the Store.
type APIOptions struct {
	// DefaultPageSize is the list page size when the client sends no limit;
	// MaxPageSize is the largest limit accepted. Zero values mean 20 and 100.
	DefaultPageSize, MaxPageSize int
	// Logger receives store failures (the client only sees a 500 with a
	// request_id). Nil means slog.Default().
	Logger *slog.Logger
}

func (o APIOptions) withDefaults() APIOptions {
	if o.DefaultPageSize <= 0 {
		o.DefaultPageSize = 20
	}
	if o.MaxPageSize <= 0 {
		o.MaxPageSize = 100
	}
	if o.DefaultPageSize > o.MaxPageSize {
		o.DefaultPageSize = o.MaxPageSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// HandleCreate serves POST /v1/notes: 201 with Location, ETag and the note.
func HandleCreate(s Store, o APIOptions) gin.HandlerFunc {
	o = o.withDefaults()
	return func(c *gin.Context) {
		in, ok := readInput(c)
		if !ok {
			return
		}
		n, err := s.Create(c.Request.Context(), in)
		if err != nil {
			storeFailed(c, o.Logger, "create", err)
			return
		}
		// FullPath is the route template ("/v1/notes"), never client input.
		c.Header("Location", c.FullPath()+"/"+url.PathEscape(n.ID))
		writeNote(c, http.StatusCreated, n)
	}
}

// HandleGet serves GET /v1/notes/:id: 200 with ETag, or 304 when the
// client's If-None-Match already names the current version.
func HandleGet(s Store, o APIOptions) gin.HandlerFunc {
	o = o.withDefaults()
	return func(c *gin.Context) {
		if !idOK(c) {
			return
		}
		if eg, ok := s.(encodedGetter); ok {
			// A cached read: the note's JSON is written as the cache holds it.
			e, err := eg.GetEncoded(c.Request.Context(), c.Param("id"))
			if err != nil {
				storeFailed(c, o.Logger, "get", err)
				return
			}
			if !notModified(c, e.Version) {
				setETag(c, e.Version)
				c.Data(http.StatusOK, jsonContentType, e.JSON)
			}
			return
		}
		n, err := s.Get(c.Request.Context(), c.Param("id"))
		if err != nil {
			storeFailed(c, o.Logger, "get", err)
			return
		}
		if !notModified(c, n.Version) {
			writeNote(c, http.StatusOK, n)
		}
	}
}

// jsonContentType is what c.JSON sends; cached bytes go out with the same.
const jsonContentType = "application/json; charset=utf-8"

// notModified answers 304 when the client's If-None-Match names version.
func notModified(c *gin.Context, version int64) bool {
	// The header map is indexed with canonical keys directly ("Etag" is
	// ETag's): GetHeader and Header canonicalize the name on every call.
	var inm string
	if v := c.Request.Header["If-None-Match"]; len(v) > 0 {
		inm = v[0]
	}
	if !noneMatch(inm, version) {
		return false
	}
	setETag(c, version)
	c.Status(http.StatusNotModified)
	return true
}

// HandleList serves GET /v1/notes?limit=&cursor=. The cursor is opaque to
// clients: they pass back next_cursor (also sent as a Link rel="next"
// header) and stop when it is absent.
func HandleList(s Store, o APIOptions) gin.HandlerFunc {
	o = o.withDefaults()
	return func(c *gin.Context) {
		limit := o.DefaultPageSize
		if v, ok := c.GetQuery("limit"); ok {
			// Reject rather than clamp: a client asking for 1000 and silently
			// getting 100 would think it has everything.
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > o.MaxPageSize {
				problem.Write(c, problem.Invalid(problem.FieldError{
					Field:   "limit",
					Message: fmt.Sprintf("must be an integer from 1 to %d", o.MaxPageSize),
				}))
				return
			}
			limit = n
		}
		cursor := c.Query("cursor")
		if !wellFormedKey(cursor) {
			problem.Write(c, problem.Invalid(problem.FieldError{
				Field:   "cursor",
				Message: "is not a cursor this API returned; pass next_cursor back unchanged, or start again without one",
			}))
			return
		}

		page, err := s.List(c.Request.Context(), cursor, limit)
		if errors.Is(err, ErrNotFound) {
			// The cursor names no note (it was deleted, or made up).
			problem.Write(c, problem.Invalid(problem.FieldError{
				Field:   "cursor",
				Message: "does not name a note; start again without a cursor",
			}))
			return
		}
		if err != nil {
			storeFailed(c, o.Logger, "list", err)
			return
		}

		// An empty page is {"items":[]}, never null, so clients can iterate
		// without a null check.
		if page.Items == nil {
			page.Items = []Note{}
		}
		if page.NextCursor != "" {
			q := url.Values{"limit": {strconv.Itoa(limit)}, "cursor": {page.NextCursor}}
			c.Header("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, c.FullPath(), q.Encode()))
		}
		c.JSON(http.StatusOK, page)
	}
}

// HandleUpdate serves PUT /v1/notes/:id. If-Match is required: 428 without
// it, 412 when it names a version that is no longer current, * to overwrite
// whatever is there.
func HandleUpdate(s Store, o APIOptions) gin.HandlerFunc {
	o = o.withDefaults()
	return func(c *gin.Context) {
		h := c.GetHeader("If-Match")
		if h == "" {
			problem.Write(c, problem.PreconditionRequired(
				`send If-Match with the ETag from your last GET of this note (or * to overwrite it regardless)`))
			return
		}
		want, ok := parseIfMatch(h)
		if !ok {
			problem.Write(c, problem.BadRequest(ifMatchSyntax))
			return
		}
		in, ok := readInput(c)
		if !ok {
			return
		}
		if !idOK(c) {
			return
		}
		n, err := s.Update(c.Request.Context(), c.Param("id"), in, want)
		if err != nil {
			storeFailed(c, o.Logger, "update", err)
			return
		}
		writeNote(c, http.StatusOK, n)
	}
}

// HandleDelete serves DELETE /v1/notes/:id: 204, with an optional If-Match
// under the same rule as PUT.
func HandleDelete(s Store, o APIOptions) gin.HandlerFunc {
	o = o.withDefaults()
	return func(c *gin.Context) {
		want := AnyVersion
		if h := c.GetHeader("If-Match"); h != "" {
			var ok bool
			if want, ok = parseIfMatch(h); !ok {
				problem.Write(c, problem.BadRequest(ifMatchSyntax))
				return
			}
		}
		if !idOK(c) {
			return
		}
		if err := s.Delete(c.Request.Context(), c.Param("id"), want); err != nil {
			storeFailed(c, o.Logger, "delete", err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// idOK answers 404 for an id no note can have (control characters, invalid
// UTF-8, far too long) without asking the store, whose SQL would choke on
// some of them, and reports whether the id is worth looking up.
func idOK(c *gin.Context) bool {
	if wellFormedKey(c.Param("id")) {
		return true
	}
	problem.Write(c, problem.NotFound(fmt.Sprintf("no note has id %q", c.Param("id"))))
	return false
}

// writeNote sends n as JSON with its ETag.
func writeNote(c *gin.Context, status int, n Note) {
	setETag(c, n.Version)
	c.JSON(status, n)
}

// storeFailed maps a Store error to its problem. Unknown errors are logged
// here, with the request context so the record carries request_id, and
// reach the client only as a generic 500: their text may name hosts,
// tables or queries.
func storeFailed(c *gin.Context, logger *slog.Logger, op string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		problem.Write(c, problem.NotFound(fmt.Sprintf("no note has id %q", c.Param("id"))))
	case errors.Is(err, ErrVersionMismatch):
		problem.Write(c, problem.PreconditionFailed(
			"the note has changed since the version named in If-Match; GET it again and retry with the new ETag"))
	case errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil:
		// The client hung up, which cancelled the request's context and so
		// the query: not a server failure, so no error log and no alert.
		problem.Write(c, problem.ClientClosed())
	case errors.Is(err, ErrUnavailable):
		// The database's failure, not this request's: warn, not error, and
		// no c.Error, so it is not mailed once per request. The database
		// check on /status turns fail and says so once.
		logger.WarnContext(c.Request.Context(), "notes store unavailable", "op", op, "error", err)
		c.Header("Retry-After", strconv.Itoa(int(unavailableRetryAfter/time.Second)))
		detail := "the database could not serve this request (it refused or failed it: the log has why); retry later"
		if database.TimedOut(err) {
			detail = "the database did not answer in time; retry later"
		}
		problem.Write(c, problem.Unavailable(detail))
	default:
		logger.ErrorContext(c.Request.Context(), "notes store failed", "op", op, "error", err)
		// Recorded for the server's 5xx reporting, which mails the error
		// with the request (internal/server/alerts.go).
		_ = c.Error(err)
		problem.Write(c, problem.Internal())
	}
}

// unavailableRetryAfter is the Retry-After sent with a 503: long enough that
// a crowd of retrying clients does not add load to a struggling database.
const unavailableRetryAfter = 5 * time.Second

// etag formats a version as a strong entity tag: 3 → "3" (with the quotes).
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// setETag sets the response's ETag to version's.
func setETag(c *gin.Context, version int64) { c.Writer.Header()["Etag"] = []string{etag(version)} }

const ifMatchSyntax = `If-Match must be * or one strong ETag as returned by GET, such as "3"`

// parseIfMatch reads an If-Match value: * means AnyVersion, "n" means
// version n. Only a single strong tag is accepted: a weak tag (W/"3") can
// never satisfy If-Match (RFC 9110 §13.1.1), and the server never sends
// one, so it signals a client bug worth a clear 400.
func parseIfMatch(h string) (int64, bool) {
	h = strings.TrimSpace(h)
	if h == "*" {
		return AnyVersion, true
	}
	return parseETag(h)
}

// parseETag reads a strong tag "n" with n a positive version. Zero is
// refused because it is AnyVersion to the Store.
func parseETag(tag string) (int64, bool) {
	s, ok := strings.CutPrefix(tag, `"`)
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, `"`); !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return 0, false
	}
	return v, true
}

// noneMatch reports whether an If-None-Match value names version, using the
// weak comparison RFC 9110 §13.1.2 prescribes for it: W/"3" matches "3".
func noneMatch(h string, version int64) bool {
	for tag := range strings.SplitSeq(h, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		if v, ok := parseETag(strings.TrimPrefix(tag, "W/")); ok && v == version {
			return true
		}
	}
	return false
}

// readInput reads a JSON Input from the body and validates it. On failure it
// writes the problem (415 or 400) and returns false.
func readInput(c *gin.Context) (Input, bool) {
	var in Input
	if detail := checkJSONContentType(c.GetHeader("Content-Type")); detail != "" {
		problem.Write(c, problem.UnsupportedMediaType(detail))
		return in, false
	}

	// The server read the whole body before the handler, within its limit
	// (its 413, 408 and 499 are written there: server.requestInput), so
	// this read is from memory; its raw text is checked after decoding,
	// see badEncoding.
	body, err := io.ReadAll(c.Request.Body)
	if err == nil {
		err = decodeOne(bytes.NewReader(body), &in)
	}
	if err == nil {
		err = exactKeys(body, "title", "body")
	}
	if err != nil {
		problem.Write(c, problem.BadRequest(decodeErrorDetail(err)))
		return in, false
	}

	var fe []problem.FieldError
	for _, name := range badEncoding(body) {
		fe = append(fe, problem.FieldError{Field: name, Message: invalidUTF8})
	}
	for _, e := range in.Validate() {
		fe = append(fe, problem.FieldError(e))
	}
	if len(fe) > 0 {
		problem.Write(c, problem.Invalid(fe...))
		return in, false
	}
	return in, true
}

// decodeOne decodes exactly one JSON value from r into v, refusing unknown
// fields and anything after the value: `{...} {...}` or `{...}}` is a client
// bug that silently ignoring the rest would hide.
func decodeOne(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	end := dec.InputOffset()
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	default:
		return trailingDataError{offset: end}
	}
}

// exactKeys checks the keys of the JSON object in body (already decoded,
// so well-formed) against names, Input's field names: encoding/json
// matches keys case-insensitively and lets a repeated key win, so
// {"Title":..} and {"title":"a","title":"b"} would otherwise be taken, and
// a proxy or firewall that reads the first of two keys would see another
// value than the one stored.
func exactKeys(body []byte, names ...string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	// body has been decoded already, so the errors below cannot happen.
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		lower := strings.ToLower(key)
		switch {
		case seen[lower]:
			return keyError(fmt.Sprintf("field %q appears more than once; send each field once", key))
		case !slices.Contains(names, key):
			for _, n := range names {
				if strings.EqualFold(n, key) {
					return keyError(fmt.Sprintf("unknown field %q: field names are case-sensitive; did you mean %q?", key, n))
				}
			}
		}
		seen[lower] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// keyError is exactKeys' answer, shown to the client as it is.
type keyError string

func (e keyError) Error() string { return string(e) }

// trailingDataError reports data after the JSON value, which ends at offset.
type trailingDataError struct{ offset int64 }

func (e trailingDataError) Error() string {
	return fmt.Sprintf("request body must hold a single JSON object; more data follows it after byte %d", e.offset)
}

// checkJSONContentType returns why ct is not acceptable, or "" when it is
// application/json (with an optional charset=utf-8; JSON is always UTF-8).
func checkJSONContentType(ct string) string {
	const want = "send the body as JSON with Content-Type: application/json"
	if ct == "" {
		return "Content-Type is missing; " + want
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Content-Type %q is not supported; %s", ct, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Sprintf("charset %q is not supported; JSON must be UTF-8", cs)
	}
	return ""
}

// decodeErrorDetail turns a json.Decoder error into a message for the
// client. It describes the client's input in the client's terms and never
// echoes Go type names or other internals.
func decodeErrorDetail(err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var trailing trailingDataError
	switch {
	case errors.As(err, &trailing):
		return trailing.Error()
	case errors.As(err, new(keyError)):
		return err.Error()
	case errors.Is(err, io.EOF):
		return "request body is empty; send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body ends before the JSON object is complete"
	case errors.As(err, &syntaxErr):
		// Offset counts the bytes read up to and including the bad one, so
		// it is the bad byte's position counting from 1, as editors do.
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fmt.Sprintf("request body must be a JSON object, not a JSON %s", typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q must be a %s, not a JSON %s", typeErr.Field, typeErr.Type.Kind(), typeErr.Value)
	}
	// encoding/json has no error type for unknown fields, only this text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + name + "; a note has only title and body"
	}
	// Anything else is unexpected (the server read the body already); its
	// text is not the client's business.
	return "the request body could not be read as JSON"
}
