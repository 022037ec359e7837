package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/session"
)

// An upgraded connection (a WebSocket) is a tunnel: once the upstream
// answers 101, bytes flow both ways unseen, with the identity headers of
// the request that opened it. So only the configured protocols may be
// upgraded to (never h2c, whose tunnel carries further HTTP requests that
// gatehouse would not strip), and a tunnel is closed when its session is
// revoked or expires, its user is deactivated or deleted, or it reaches
// upgrade_max_lifetime (without a session, public_upgrade_max_lifetime,
// if sooner). ReverseProxy closes the upstream side of a tunnel when the
// request's context ends; each tunnel gets a cancel func that a watcher
// calls.

// refuseTunnel answers and reports true for a request that asks for a
// tunnel gatehouse does not allow: CONNECT (405), or an Upgrade header
// naming any protocol outside the allowlist (400, rather than removing
// the header: the client learns at once that its protocol is refused).
func (p *Proxy) refuseTunnel(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		p.pages.refuseRequest(w, r, http.StatusMethodNotAllowed, "connect", errors.New("CONNECT is never proxied"))
		return true
	}
	for _, line := range r.Header.Values("Upgrade") {
		for token := range strings.SplitSeq(line, ",") {
			token = strings.TrimSpace(token)
			if token == "" {
				continue
			}
			if !p.upgradeAllowed(token) {
				p.pages.refuseRequest(w, r, http.StatusBadRequest, "upgrade", fmt.Errorf("upgrade to %q is not in upgrades", token))
				return true
			}
		}
	}
	return false
}

// upgradeAllowed reports whether protocol (name or name/version) is in
// the allowlist; h2c never is.
func (p *Proxy) upgradeAllowed(protocol string) bool {
	name := protocolName(protocol)
	if strings.EqualFold(name, "h2c") || !tokenOnly(protocol) {
		return false
	}
	return slices.ContainsFunc(p.cfg.Upgrades, func(a string) bool { return strings.EqualFold(protocolName(a), name) })
}

// isUpgrade reports whether ReverseProxy will treat r as a protocol
// switch.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// tunnel is one open upgraded connection.
type tunnel struct {
	session  *session.Session // nil on a public path
	userID   string
	deadline time.Time // zero: none
	limit    string    // the key that set deadline
	cancel   context.CancelFunc
}

// tunnels are the open tunnels and their watcher, which runs while there
// are any.
type tunnels struct {
	mu      sync.Mutex
	live    map[*tunnel]struct{}
	running bool
	kick    chan struct{}
}

func newTunnels() *tunnels {
	return &tunnels{live: map[*tunnel]struct{}{}, kick: make(chan struct{}, 1)}
}

// openTunnel registers a tunnel for r and returns the request to proxy it with;
// the returned func unregisters it.
func (p *Proxy) openTunnel(r *http.Request, s *session.Session, id *identity) (*http.Request, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	t := &tunnel{session: s, cancel: cancel}
	if id != nil {
		t.userID = id.userID
	}
	t.deadline, t.limit = p.tunnelDeadline(s == nil)
	ts := p.tunnels
	ts.mu.Lock()
	ts.live[t] = struct{}{}
	if !ts.running {
		ts.running = true
		go p.watchTunnels()
	}
	ts.mu.Unlock()
	return r.WithContext(ctx), func() {
		cancel()
		ts.mu.Lock()
		delete(ts.live, t)
		ts.mu.Unlock()
	}
}

// tunnelDeadline is when a tunnel opened now must close, and the key
// that says so: upgrade_max_lifetime, and without a session
// public_upgrade_max_lifetime, whichever comes first (zero: none).
func (p *Proxy) tunnelDeadline(public bool) (time.Time, string) {
	d, key := p.cfg.UpgradeMaxLifetime, "upgrade_max_lifetime"
	if pd := p.cfg.PublicUpgradeMaxLifetime; public && pd > 0 && (d == 0 || pd < d) {
		d, key = pd, "public_upgrade_max_lifetime"
	}
	if d == 0 {
		return time.Time{}, ""
	}
	return p.now().Add(d), key
}

// recheckTunnels asks the watcher to check every tunnel now (after a
// logout, a single logout or a change to a user).
func (p *Proxy) recheckTunnels() {
	select {
	case p.tunnels.kick <- struct{}{}:
	default:
	}
}

// watchTunnels checks the open tunnels every Options.TunnelCheck and when asked,
// until none is left.
func (p *Proxy) watchTunnels() {
	tick := time.NewTicker(p.tunnelCheck)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-p.tunnels.kick:
		}
		if !p.checkTunnels() {
			return
		}
	}
}

// checkTunnels closes the tunnels that may not live on; it reports false
// (and the watcher stops) when none is open.
func (p *Proxy) checkTunnels() bool {
	ts := p.tunnels
	ts.mu.Lock()
	open := make([]*tunnel, 0, len(ts.live))
	for t := range ts.live {
		open = append(open, t)
	}
	ts.mu.Unlock()
	for _, t := range open {
		if reason := p.tunnelEnds(t); reason != "" {
			p.log.Info("closing upgraded connection", zap.String("reason", reason), zap.String("user_id", t.userID))
			t.cancel()
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.live) == 0 {
		ts.running = false
		return false
	}
	return true
}

// tunnelEnds says why a tunnel must close, or "" if it may live on. A
// store that cannot be reached keeps it open (as it keeps serving the
// cached identity).
func (p *Proxy) tunnelEnds(t *tunnel) string {
	if !t.deadline.IsZero() && !p.now().Before(t.deadline) {
		return t.limit
	}
	if t.session == nil {
		return ""
	}
	if !p.sessions.Valid(*t.session) {
		return "session_ended"
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.JITTimeout)
	defer cancel()
	id, err := p.identity(ctx, t.userID)
	switch {
	case errors.Is(err, provision.ErrNotFound):
		return "user_deleted"
	case err == nil && !id.active:
		return "user_deactivated"
	}
	return ""
}

// checkSwitch refuses a 101 answer to a request that did not ask for an
// allowed upgrade (an upstream must not open a tunnel by itself).
func (p *Proxy) checkSwitch(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	req := res.Request
	if req == nil || !isUpgrade(req) || !p.upgradeAllowed(req.Header.Get("Upgrade")) {
		return errors.New("upstream switched protocols without an allowed upgrade request")
	}
	return nil
}
