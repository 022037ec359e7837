package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"gatehouse/provision"
	"gatehouse/session"
)

// login is the JIT step of the ACS: map the assertion, upsert the user,
// refuse deactivated users, and warm the identity cache so the first
// proxied request needs no store read. It writes one audit event.
func (p *Proxy) login(ctx context.Context, in session.Identity) (string, error) {
	ev := []zap.Field{zap.String("event", "login"), zap.String("idp", in.IdP), zap.String("idp_kind", in.Kind()), logString("name_id", in.NameID),
		zap.Stringer("client_ip", ClientIP(ctx)), zap.String("request_id", RequestID(ctx))}
	var storeTime time.Duration
	coalesced := false // the store result is another login's (see provisionShared)
	refuse := func(reason string, err error) (string, error) {
		fields := append(ev, zap.String("outcome", "refused"), zap.String("reason", reason), zap.Error(err))
		if coalesced {
			fields = append(fields, zap.Bool("coalesced", true))
		}
		p.audit.Info("login", fields...)
		jit := "refused"
		if reason == "store" {
			jit = "failed"
		}
		p.onLogin(LoginEvent{IdP: in.IdP, Outcome: "refused", Reason: reason, JIT: jit, StoreTime: storeTime, Coalesced: coalesced})
		return "", &session.Refusal{Reason: reason, Err: err}
	}
	pol, ok := p.idps[in.IdP]
	if !ok {
		return refuse("no_policy", fmt.Errorf("no JIT policy for idp %q", in.IdP))
	}
	l, err := pol.Mapping.Map(provision.Assertion{IdP: in.EntityID, NameID: in.NameID, NameIDFormat: in.NameIDFormat, Attributes: in.Attributes})
	if err != nil {
		return refuse("mapping", fmt.Errorf("map assertion: %w", err))
	}
	l.Reserved = pol.Reserved
	start := time.Now()
	res, gen, coalesced, err := p.provisionShared(ctx, l, ev)
	storeTime = time.Since(start)
	switch {
	case err == nil:
	case errors.Is(err, provision.ErrDisabled):
		p.known.forgetKey(l.Key)
		return refuse("disabled", fmt.Errorf("%w: %w", session.ErrAccessDenied, err))
	case errors.Is(err, provision.ErrNotFound):
		p.known.forgetKey(l.Key)
		return refuse("not_provisioned", fmt.Errorf("%w: user does not exist and this idp may not create users: %w", session.ErrAccessDenied, err))
	case errors.Is(err, provision.ErrInvalid), errors.Is(err, provision.ErrNoKey), errors.Is(err, provision.ErrConflict):
		return refuse("rejected", fmt.Errorf("provision user: %w", err))
	case pol.ContinueOnStoreError:
		u, ok := p.lastKnownGood(l.Key)
		if !ok {
			return refuse("store", fmt.Errorf("%w: provision user: %w (continue_on_store_error admits only a user this instance has seen active; this one it has not)",
				session.ErrUnavailable, err))
		}
		p.onLogin(LoginEvent{IdP: in.IdP, Outcome: "unprovisioned", Reason: "store", JIT: "failed", StoreTime: storeTime, Coalesced: coalesced})
		setUser(ctx, u.ID, u.UserName)
		return p.admitKnown(u, ev, err)
	default:
		return refuse("store", fmt.Errorf("%w: provision user: %w", session.ErrUnavailable, err))
	}
	// Remember first, so that a drop after this read (a SCIM change of
	// the user racing the login) forgets both.
	p.known.remember(l.Key, res.User)
	if !p.users.putRead(p.identityOf(res.User, p.now()), gen) {
		p.known.forgetUser(res.User.ID)
	}
	setUser(ctx, res.User.ID, res.User.UserName)
	if coalesced {
		// Another login's call wrote whatever was written, and its line
		// says so; this login changed nothing.
		p.audit.Info("login", append(ev, zap.String("user_id", res.User.ID), zap.String("outcome", string(provision.Unchanged)),
			zap.Strings("kept", res.KeptNames()), zap.Bool("coalesced", true))...)
		p.onLogin(LoginEvent{IdP: in.IdP, Outcome: string(provision.Unchanged), JIT: string(provision.Unchanged), StoreTime: storeTime, Coalesced: true})
		return res.User.ID, nil
	}
	// kept names the asserted fields the login left alone, and why:
	// "email (owned by SCIM)".
	p.audit.Info("login", append(ev, zap.String("user_id", res.User.ID), zap.String("outcome", string(res.Outcome)),
		zap.Strings("changed", res.Changed), zap.Strings("kept", res.KeptNames()))...)
	p.onLogin(LoginEvent{IdP: in.IdP, Outcome: string(res.Outcome), JIT: string(res.Outcome), StoreTime: storeTime})
	return res.User.ID, nil
}

// coalescer lets concurrent logins of one identity with the same claims
// share one store call: fifty browsers finishing the same first login at
// once make one upsert, not fifty queued on the store's writer.
type coalescer struct {
	g       singleflight.Group
	waiting atomic.Int64 // logins waiting for a shared call now
}

// Waiting is the number of logins waiting for a store call now, their
// own or a shared one.
func (c *coalescer) Waiting() int64 { return c.waiting.Load() }

// flightResult is what a shared store call returns to every caller.
type flightResult struct {
	res provision.Result
	err error
	// gen is the identity cache's generation when the call began: its
	// result may predate any drop since (see userCache.putRead).
	gen uint64
}

// provisionShared runs the store's upsert for l, once for every
// concurrent login with the same flightKey. The call runs without the
// first caller's cancellation, bounded by the JIT timeout, so that a
// browser that goes away fails only its own login; each caller waits on
// its own ctx. shared reports that the result is another login's call.
// A caller that gives up still gets the write its call made audited.
func (p *Proxy) provisionShared(ctx context.Context, l provision.Login, ev []zap.Field) (res provision.Result, gen uint64, shared bool, err error) {
	var ran atomic.Bool
	ch := p.jit.g.DoChan(flightKey(l), func() (v any, _ error) {
		ran.Store(true)
		gen := p.users.generation()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.JITTimeout)
		defer cancel()
		defer func() {
			// A store that panics fails the logins that share its call,
			// not the process: nothing above this goroutine recovers.
			if r := recover(); r != nil {
				p.log.Error("user store panicked during a login", zap.Any("panic", r), zap.Stack("stack"))
				v = flightResult{err: fmt.Errorf("proxy: the user store panicked: %v", r), gen: gen}
			}
		}()
		res, err := p.store.Provision(sctx, l)
		return flightResult{res, err, gen}, nil
	})
	p.jit.waiting.Add(1)
	defer p.jit.waiting.Add(-1)
	select {
	case r := <-ch:
		fr := r.Val.(flightResult)
		return fr.res, fr.gen, !ran.Load(), fr.err
	case <-ctx.Done():
		ev = slices.Clone(ev)
		go func() {
			r := <-ch // bounded by the JIT timeout of the call
			if fr := r.Val.(flightResult); ran.Load() && fr.err == nil && fr.res.Outcome != provision.Unchanged {
				p.audit.Info("login", append(ev, zap.String("user_id", fr.res.User.ID), zap.String("outcome", string(fr.res.Outcome)),
					zap.Strings("changed", fr.res.Changed), zap.Bool("abandoned", true))...)
			}
		}()
		return provision.Result{}, 0, false, fmt.Errorf("proxy: waiting for the user store: %w", context.Cause(ctx))
	}
}

// flightKey names what a login asks the store: its identity key, in the
// clear, and a digest of everything else in the Login (claims, groups,
// policy), so that only logins asking the very same thing share a call.
// Every value is length-prefixed, so no two different logins encode alike.
func flightKey(l provision.Login) string {
	var key []byte
	for _, s := range []string{l.Key.IdP, l.Key.Kind, l.Key.Subject} {
		key = appendField(key, s)
	}
	h := sha256.New()
	var buf []byte
	put := func(ss ...string) {
		buf = buf[:0]
		for _, s := range ss {
			buf = appendField(buf, s)
		}
		h.Write(buf)
	}
	count := func(n int) { put(fmt.Sprint(n)) }
	for _, m := range []map[string]string{l.Claims.Fields, l.Claims.Extra} {
		count(len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			put(k, m[k])
		}
	}
	count(len(l.Claims.Groups))
	put(l.Claims.Groups...)
	put(fmt.Sprint(l.Claims.HasGroups), fmt.Sprint(l.NoCreate), l.LinkBy)
	count(len(l.Reserved))
	put(l.Reserved...)
	return string(h.Sum(key))
}

// appendField appends s with its length in front.
func appendField(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// LoginEvent is what one login did, for metrics.
type LoginEvent struct {
	IdP string
	// Outcome is created, updated, unchanged, linked, refused or
	// unprovisioned; Reason says why a login was refused.
	Outcome, Reason string
	// JIT is the store's part: created, updated, unchanged, linked,
	// refused (by the store's rules) or failed (the store failed); empty
	// when the login was refused before JIT.
	JIT       string
	StoreTime time.Duration // zero when the store was not asked
	// Coalesced: the login shared the store call of a concurrent,
	// identical login and wrote nothing itself (Outcome unchanged, or the
	// same refusal).
	Coalesced bool
}

func (p *Proxy) onLogin(e LoginEvent) {
	if e.StoreTime == 0 && e.JIT == "refused" {
		e.JIT = "" // refused before the store was asked (mapping, policy)
	}
	if p.loginHook != nil {
		p.loginHook(e)
	}
}

// lastKnownGood is the record the store last returned for key as an
// active user, unless the identity cache has since seen it inactive.
func (p *Proxy) lastKnownGood(key provision.Key) (provision.User, bool) {
	u, ok := p.known.lookup(key)
	if !ok {
		return provision.User{}, false
	}
	if e := p.users.get(u.ID); e != nil && !e.active {
		p.known.forgetUser(u.ID)
		return provision.User{}, false
	}
	return u, true
}

// admitKnown lets a login through while the store is down, as the user
// of their last known good record (its ID, user name, groups: nothing is
// taken from the assertion, so no uniqueness or lifecycle rule is
// skipped). The identity is cached as due for a re-read in a few
// seconds, so that once the store is back it decides again.
func (p *Proxy) admitKnown(u provision.User, ev []zap.Field, storeErr error) (string, error) {
	now := p.now()
	e := p.identityOf(u, now)
	e.fetched = now.Add(-p.cfg.UserCacheTTL + 5*time.Second)
	p.users.put(e)
	p.audit.Warn("login", append(ev, zap.String("user_id", u.ID), zap.String("outcome", "unprovisioned"),
		zap.String("reason", "store unavailable; admitted as the last known good record"), zap.Error(storeErr))...)
	return u.ID, nil
}
