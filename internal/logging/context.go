package logging

import "context"

type requestIDKey struct{}

// requestIDContext carries the request ID. It is a context type of its own
// rather than context.WithValue because it is made on every request: one
// allocation instead of two (WithValue's context and the string boxed in an
// interface), and Value answers with the context itself, a pointer, so
// reading the ID allocates nothing either.
type requestIDContext struct {
	context.Context
	id string
}

func (c *requestIDContext) Value(key any) any {
	if key == (requestIDKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithRequestID returns a context carrying the request ID; every record
// logged with that context (logger.InfoContext(ctx, ...)) gets a request_id
// attribute, added by the handler Setup builds, in every sink.
func WithRequestID(ctx context.Context, id string) context.Context {
	return &requestIDContext{Context: ctx, id: id}
}

// RequestID returns the request ID stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKey{}).(*requestIDContext); ok {
		return c.id
	}
	return ""
}
