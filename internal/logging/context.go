package logging

import "context"

type requestIDKey struct{}

// WithRequestID returns a context carrying the request ID; every record
// logged with that context (logger.InfoContext(ctx, ...)) gets a request_id
// attribute, added by the handler Setup builds, in every sink.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
