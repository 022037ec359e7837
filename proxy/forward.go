package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"gatehouse/session"
)

// withClient derives the request's client (see deriveClient) and keeps it
// in the request's context for the rate limiter, the logs and Rewrite.
func (p *Proxy) withClient(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), clientKey{}, deriveClient(r, p.trusted)))
}

// offHost redirects a request for any host but base_url's to the same
// path and query there, and reports whether it did. The redirect is 308
// (the method and body are kept) and not cached (a later change of
// base_url cannot leave browsers in a loop). The probes are exempt: they
// are asked for by the pod's address.
func (p *Proxy) offHost(w http.ResponseWriter, r *http.Request) bool {
	if normalizeHost(r.Host, p.origin.scheme) == p.origin.host {
		return false
	}
	if r.URL.Path == p.cfg.Prefix+PathHealthz || r.URL.Path == p.cfg.Prefix+PathLivez || r.URL.Path == p.cfg.Prefix+PathReadyz {
		return false
	}
	uri := r.URL.RequestURI()
	if !strings.HasPrefix(uri, "/") {
		uri = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.origin.scheme+"://"+p.origin.host+uri, http.StatusPermanentRedirect)
	return true
}

// forward proxies r as the user of s and id (both nil on a public path):
// an upgrade is registered as a tunnel, and a body gets its idle timeout.
// A request without a session takes one of its client's places at the
// upstream (public_max_concurrent) and gets public_body_timeout for its
// whole body.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, s *session.Session, id *identity) {
	var total time.Duration
	if s == nil {
		release, ok := p.publicPlace(w, r)
		if !ok {
			return
		}
		defer release()
		total = p.cfg.PublicBodyTimeout
	}
	if id != nil {
		if i := requestInfoFrom(r.Context()); i != nil {
			i.identity = id
		} else {
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
		}
	}
	c := clientFrom(r.Context())
	if c == nil {
		c = deriveClient(r, p.trusted)
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
	}
	c.cookieSet = len(w.Header()["Set-Cookie"]) > 0
	body, finish := p.limitProxiedBody(w, r, total)
	defer finish()
	c.body = body
	if isUpgrade(r) {
		var done func()
		r, done = p.openTunnel(r, tunnelSession(s), id)
		defer done()
	}
	p.rp.ServeHTTP(w, r)
}

// tunnelSession is a copy of s for a tunnel to keep (nil stays nil), so
// that the session of a request that opens none stays on its stack.
func tunnelSession(s *session.Session) *session.Session {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// setForwarded writes the forwarding headers of an outbound request:
// X-Forwarded-For from the derived chain, X-Forwarded-Host and -Proto
// from base_url (never from the client's Host, absolute URI or
// :authority).
func (p *Proxy) setForwarded(pr *httputil.ProxyRequest) {
	h := pr.Out.Header
	c := clientFrom(pr.In.Context())
	if c == nil {
		c = deriveClient(pr.In, p.trusted)
	}
	if c.forwarded != "" {
		if c.forwardedValue[0] != c.forwarded {
			c.forwardedValue[0] = c.forwarded
		}
		h["X-Forwarded-For"] = c.forwardedValue[:]
	}
	// Shared by every request: their capacity is their length.
	h["X-Forwarded-Host"] = p.forwardedHost
	h["X-Forwarded-Proto"] = p.forwardedProto
	if p.cfg.PreserveHost {
		pr.Out.Host = p.origin.host
	}
}

// modifyResponse refuses a tunnel nobody asked for and an answer to a
// body that timed out, and keeps shared caches from storing a response
// that carries gatehouse's cookie.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if err := p.checkSwitch(res); err != nil {
		return err
	}
	c := clientFrom(res.Request.Context())
	if c == nil {
		return nil
	}
	if c.body.slow() {
		// The upstream answered a body cut short: the client gets 408.
		return errors.New("request body timed out (proxied_body_idle_timeout, or public_body_timeout without a session)")
	}
	if c.cookieSet {
		privateCache(res.Header)
	}
	return nil
}

// cdnCacheHeaders are the cache controls that CDNs read instead of
// Cache-Control (RFC 9213 and vendors').
// (in their canonical form: the keys of a response's header).
var cdnCacheHeaders = []string{"Cdn-Cache-Control", "Surrogate-Control", "Cloudflare-Cdn-Cache-Control", "Akamai-Cache-Control", "Edge-Control"}

// privateCache makes a response uncacheable by shared caches: public,
// s-maxage and a field-limited private are dropped, private is added
// (no-store and the rest are kept), and CDN-only cache controls are
// removed.
func privateCache(h http.Header) {
	for _, n := range cdnCacheHeaders {
		delete(h, n)
	}
	if len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = privateOnly
		return
	}
	var kept []string
	private := false
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "":
			case "public", "s-maxage", "proxy-revalidate":
			case "private": // private="field" would limit it to fields: the whole response is
				if !private {
					kept = append(kept, "private")
					private = true
				}
			default:
				kept = append(kept, d)
			}
		}
	}
	if !private {
		kept = append(kept, "private")
	}
	h.Set("Cache-Control", strings.Join(kept, ", "))
}

// privateOnly is the Cache-Control of a response that had none, shared:
// its capacity is its length, so an append copies.
var privateOnly = []string{"private"}
