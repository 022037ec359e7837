package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// A client that sends its body slowly holds a connection and a goroutine
// for as long as it likes. Gatehouse's own endpoints read small bodies,
// so the whole body gets EndpointBodyTimeout; a proxied body (an upload)
// may take as long as it keeps arriving, but no pause between two reads
// may exceed ProxiedBodyIdleTimeout (as nginx's client_body_timeout).
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
// must arrive within the idle timeout. The returned func must be called
// when the handler returns: a read after that (the transport may still
// be sending) no longer touches the connection's deadline.
func (p *Proxy) limitProxiedBody(w http.ResponseWriter, r *http.Request) (*deadlineBody, func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, func() {}
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(p.cfg.ProxiedBodyIdleTimeout)) != nil {
		return nil, func() {}
	}
	b := &deadlineBody{ReadCloser: r.Body, rc: rc, idle: p.cfg.ProxiedBodyIdleTimeout}
	r.Body = b
	return b, b.finish
}

// deadlineBody lifts the read deadline at the end of the body and, with
// idle set, moves it forward before every read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration

	mu       sync.Mutex
	done     bool // the body ended or the handler returned
	timedOut bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.idle > 0 && !b.done {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
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
