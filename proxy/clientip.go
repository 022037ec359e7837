package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// maxForwardedHops bounds how far an X-Forwarded-For chain is walked.
const maxForwardedHops = 32

// clientAddr is what gatehouse derived about a request's client (its
// address and the X-Forwarded-For value sent upstream), and what the
// response to it needs to know.
type clientAddr struct {
	ip        netip.Addr
	forwarded string
	// cookieSet: gatehouse set a cookie on the response (it must not be
	// stored by shared caches).
	cookieSet bool
	body      *deadlineBody // a proxied body, if any
	// forwardedValue is forwarded as a header value, shared: its
	// capacity is its length.
	forwardedValue [1]string
	// ipText is ip as text, when derive made it (the start of
	// forwarded).
	ipText string
}

type clientKey struct{}

// ClientIP is the client address gatehouse derived for the request whose
// context this is (see deriveClient); invalid outside the proxy's
// handler. Logs and the rate limiter use it.
func ClientIP(ctx context.Context) netip.Addr {
	c := clientFrom(ctx)
	if c == nil {
		return netip.Addr{}
	}
	return c.ip
}

// clientFrom is the client of the request whose context this is: the one
// in its requestInfo (ServeHTTP's), else one kept on its own (withClient).
func clientFrom(ctx context.Context) *clientAddr {
	if i := requestInfoFrom(ctx); i != nil && i.hasClient {
		return &i.client
	}
	c, _ := ctx.Value(clientKey{}).(*clientAddr)
	return c
}

// deriveClient finds the client of r. A connection from an address
// outside trusted is the client, and X-Forwarded-For becomes that address
// alone. A connection from a trusted proxy has its X-Forwarded-For chain
// walked from the right: the first address that is not a trusted proxy is
// the client (if all are trusted, the left-most one is). The chain sent
// upstream starts at the client: entries left of it were written by the
// client itself and are dropped. An entry that does not parse stops the
// walk at the proxy that wrote it.
func deriveClient(r *http.Request, trusted []netip.Prefix) *clientAddr {
	c := new(clientAddr)
	c.derive(r, trusted)
	return c
}

// derive fills c in as deriveClient's result.
func (c *clientAddr) derive(r *http.Request, trusted []netip.Prefix) {
	*c = clientAddr{}
	c.ip, c.forwarded = clientOf(r, trusted)
	c.forwardedValue[0] = c.forwarded
	// The chain starts with the client's address.
	var buf [64]byte
	if first, _, _ := strings.Cut(c.forwarded, ","); c.ip.IsValid() && string(c.ip.AppendTo(buf[:0])) == first {
		c.ipText = first
	}
}

// clientOf is deriveClient's address and X-Forwarded-For chain.
func clientOf(r *http.Request, trusted []netip.Prefix) (netip.Addr, string) {
	peer, ok := parseForwardedAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, ""
	}
	if !isTrusted(peer, trusted) {
		return peer, addrString(peer, r.RemoteAddr)
	}
	chain := []netip.Addr{peer} // right to left
	entries := forwardedEntries(r.Header)
	for i := len(entries) - 1; i >= 0 && len(chain) <= maxForwardedHops; i-- {
		a, ok := parseForwardedAddr(entries[i])
		if !ok {
			break
		}
		chain = append(chain, a)
		if !isTrusted(a, trusted) {
			break
		}
	}
	slices.Reverse(chain)
	parts := make([]string, len(chain))
	for i, a := range chain {
		parts[i] = a.String()
	}
	return chain[0], strings.Join(parts, ", ")
}

// addrString is a.String(), taken from the host part of hostPort (the
// address a was parsed from) when that spells it the same way, so that
// the common request formats no address.
func addrString(a netip.Addr, hostPort string) string {
	var buf [64]byte
	host := hostPort
	if h, _, err := net.SplitHostPort(hostPort); err == nil {
		host = h
	}
	if string(a.AppendTo(buf[:0])) == host {
		return host
	}
	return a.String()
}

// forwardedEntries are the comma-separated entries of every
// X-Forwarded-For line, in order. Only that spelling is read: it is the
// one proxies append to, and another (X_Forwarded_For) comes from the
// client, whose lines would mix with the proxy's in no defined order.
func forwardedEntries(h http.Header) []string {
	var out []string
	for _, v := range h.Values("X-Forwarded-For") {
		for e := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// parseForwardedAddr reads "ip", "ip:port", "[ipv6]" or "[ipv6]:port",
// without a zone; IPv4-mapped IPv6 addresses become IPv4.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limitKey is the address a client is rate-limited by: IPv4 addresses as
// they are, IPv6 addresses by their /64 (one host usually holds a whole
// /64).
func limitKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
