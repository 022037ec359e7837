package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base32"
)

// requestIDKey keys a request's ID in its context.
type requestIDKey struct{}

// RequestID is the ID gatehouse gave the request in ctx (the one passed
// to the upstream, written in the access log and shown on error pages);
// empty outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID returns ctx carrying id.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRequestID is 80 random bits in 16 base32 characters: short enough to
// read over the telephone, unique enough never to repeat.
func newRequestID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
