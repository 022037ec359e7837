package ldapdir

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Stats counts the LDAP operations a Store sent.
type Stats struct {
	Dials, Binds, Searches, Compares, Adds, Modifies, ModifyDNs, Deletes int64
}

type counters struct {
	dials, binds, searches, compares, adds, modifies, modifyDNs, deletes atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{Dials: c.dials.Load(), Binds: c.binds.Load(), Searches: c.searches.Load(), Compares: c.compares.Load(), Adds: c.adds.Load(),
		Modifies: c.modifies.Load(), ModifyDNs: c.modifyDNs.Load(), Deletes: c.deletes.Load()}
}

// pool keeps a few bound connections. go-ldap has neither a pool nor
// reconnects, and directories close idle connections (AD after 900s), so
// the pool re-dials and re-binds when a connection fails, drops idle ones
// before the server would, and applies the caller's context to every
// operation: the deadline becomes the request timeout, and a cancelled
// context closes the connection under the operation.
type pool struct {
	url      *url.URL
	startTLS bool
	tls      *tls.Config
	bindDN   string
	password func() (string, error)
	dialTO   time.Duration
	opTO     time.Duration
	idleTO   time.Duration
	slots    chan struct{}
	stats    *counters
	now      func() time.Time
	mu       sync.Mutex
	idle     []idleConn
	closed   bool
}

type idleConn struct {
	c     *ldap.Conn
	since time.Time
}

// get returns a bound connection and whether it came from the pool.
func (p *pool) get(ctx context.Context) (*ldap.Conn, bool, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("ldapdir: waiting for a connection: %w", ctx.Err())
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, false, errors.New("ldapdir: store closed")
	}
	now := p.now()
	for len(p.idle) > 0 {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if ic.c.IsClosing() || now.Sub(ic.since) > p.idleTO {
			go ic.c.Close()
			continue
		}
		p.mu.Unlock()
		return ic.c, true, nil
	}
	p.mu.Unlock()
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, false, err
	}
	return c, false, nil
}

func (p *pool) put(c *ldap.Conn, broken bool) {
	p.mu.Lock()
	if broken || p.closed || c.IsClosing() {
		p.mu.Unlock()
		c.Close()
	} else {
		p.idle = append(p.idle, idleConn{c, p.now()})
		p.mu.Unlock()
	}
	<-p.slots
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, ic := range idle {
		ic.c.Close()
	}
}

// dial connects, secures and binds one connection within the dial timeout
// and the caller's context.
func (p *pool) dial(ctx context.Context) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.dialTO)
	defer cancel()
	p.stats.dials.Add(1)
	host := p.url.Host
	if p.url.Port() == "" {
		port := "389"
		if p.url.Scheme == "ldaps" {
			port = "636"
		}
		host = net.JoinHostPort(p.url.Hostname(), port)
	}
	var nc net.Conn
	var err error
	if p.url.Scheme == "ldaps" {
		nc, err = (&tls.Dialer{Config: p.tls}).DialContext(ctx, "tcp", host)
	} else {
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return nil, fmt.Errorf("ldapdir: connect to %s: %w", host, err)
	}
	c := ldap.NewConn(nc, p.url.Scheme == "ldaps")
	c.Start()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(dl))
	}
	if p.startTLS {
		if err := c.StartTLS(p.tls); err != nil {
			c.Close()
			return nil, fmt.Errorf("ldapdir: StartTLS with %s: %w", host, err)
		}
	}
	pw, err := p.password()
	if err != nil {
		c.Close()
		return nil, err
	}
	p.stats.binds.Add(1)
	if err := c.Bind(p.bindDN, pw); err != nil {
		c.Close()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, fmt.Errorf("ldapdir: bind as %s: wrong DN or password: %w", p.bindDN, err)
		}
		return nil, fmt.Errorf("ldapdir: bind as %s: %w", p.bindDN, err)
	}
	if ctx.Err() != nil {
		c.Close()
		return nil, fmt.Errorf("ldapdir: connect to %s: %w", host, ctx.Err())
	}
	return c, nil
}

// do runs fn on a pooled connection under the caller's context. A
// connection that fails at the network level is discarded; if it had sat
// in the pool (the server may have closed it meanwhile), fn runs once more
// on a fresh one. Every operation gatehouse sends can be repeated safely:
// a repeated add meets "already exists", a repeated versioned modify meets
// "no such value", and both are handled as a concurrent write.
func (p *pool) do(ctx context.Context, fn func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ldapdir: %w", err)
		}
		c, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		timeout := p.opTO
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		c.SetTimeout(timeout)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		err = fn(c)
		interrupted := !stop()
		broken := interrupted || isConnError(err)
		p.put(c, broken)
		switch {
		case interrupted:
			return fmt.Errorf("ldapdir: operation abandoned: %w", ctx.Err())
		case broken && reused && attempt == 0:
			continue
		case broken:
			return fmt.Errorf("ldapdir: directory unreachable: %w", err)
		}
		return err
	}
}

// isConnError reports errors after which a connection is unusable:
// network failures and request timeouts (the reply may still arrive).
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode == ldap.ErrorNetwork || le.ResultCode == ldap.LDAPResultServerDown ||
			le.ResultCode == ldap.LDAPResultUnavailable || le.ResultCode == ldap.LDAPResultBusy
	}
	var ne net.Error
	return errors.As(err, &ne)
}
