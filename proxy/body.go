package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A client that sends its body slowly holds a connection and a goroutine
// for as long as it likes. Gatehouse's own endpoints read small bodies,
// so the whole body gets EndpointBodyTimeout; a proxied body (an upload)
// of a signed-in user may take as long as it keeps arriving, but no pause
// between two reads may exceed ProxiedBodyIdleTimeout (as nginx's
// client_body_timeout). A proxied body without a session holds an
// upstream connection for a client nobody knows: it also gets
// PublicBodyTimeout for its whole arrival.
// Either deadline is lifted once the body has been read, so that a slow
// answer (a long poll, a stream) is not cut.

// limitEndpointBody gives the body of a request to one of gatehouse's own
// endpoints a deadline for its whole arrival.
func (p *Proxy) limitEndpointBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(p.cfg.EndpointBodyTimeout)) != nil {
		return // not a network connection
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// limitProxiedBody wraps the body of a proxied request so that each read
// must arrive within the idle timeout and, with total set (a request
// without a session), the whole body within total. The returned func
// must be called when the handler returns: a read after that (the
// transport may still be sending) no longer touches the connection's
// deadline.
func (p *Proxy) limitProxiedBody(w http.ResponseWriter, r *http.Request, total time.Duration) (*deadlineBody, func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, func() {}
	}
	b := &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: p.cfg.ProxiedBodyIdleTimeout}
	if total > 0 {
		b.end = time.Now().Add(total)
	}
	if b.rc.SetReadDeadline(b.next()) != nil {
		return nil, func() {}
	}
	r.Body = b
	return b, b.finish
}

// deadlineBody lifts the read deadline at the end of the body and, with
// idle set, moves it forward before every read (never past end, when
// set).
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time // zero: none

	mu       sync.Mutex
	done     bool // the body ended or the handler returned
	timedOut bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.idle > 0 && !b.done {
		b.rc.SetReadDeadline(b.next())
	}
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.mu.Lock()
		var ne net.Error
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			b.timedOut = true
		} else if err == io.EOF && !b.done {
			b.rc.SetReadDeadline(time.Time{})
			b.done = true
		}
		b.mu.Unlock()
	}
	return n, err
}

// next is the deadline of the next read: the idle timeout from now, but
// no later than the end of the body's time.
func (b *deadlineBody) next() time.Time {
	d := time.Now().Add(b.idle)
	if !b.end.IsZero() && b.end.Before(d) {
		return b.end
	}
	return d
}

// finish stops the body from touching the connection's deadline.
func (b *deadlineBody) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// slow reports whether the body timed out.
func (b *deadlineBody) slow() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut
}

// closeIfBodyUnread arranges for an answer written before the request's
// body was read to its end to close the connection (HTTP/1): a refusal
// (an ACS post without a login state, SCIM without a token, a request
// without a session, an upstream's early answer) is sent at once,
// instead of after the server drains a body nobody will read, at the
// pace its sender chooses. HTTP/2 ends such a stream on its own.
func closeIfBodyUnread(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if r.ProtoMajor != 1 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return w
	}
	b := &eofBody{ReadCloser: r.Body}
	r.Body = b
	return &closingWriter{ResponseWriter: w, body: b}
}

// eofBody records whether its reader reached the end of the body.
type eofBody struct {
	io.ReadCloser
	eof atomic.Bool // read by the handler while the transport reads the body
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// closingWriter adds Connection: close to the final answer when the body
// was not read to its end.
type closingWriter struct {
	http.ResponseWriter
	body  *eofBody
	wrote bool
}

func (w *closingWriter) WriteHeader(code int) {
	if code >= 200 {
		w.final()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closingWriter) Write(p []byte) (int, error) {
	w.final()
	return w.ResponseWriter.Write(p)
}

// final marks the connection for closing, once, before the final answer's
// header is written.
func (w *closingWriter) final() {
	if w.wrote {
		return
	}
	w.wrote = true
	if !w.body.eof.Load() {
		w.Header().Set("Connection", "close")
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes, the hijack of an upgrade).
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
