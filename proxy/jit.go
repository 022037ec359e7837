package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/session"
)

// login is the JIT step of the ACS: map the assertion, upsert the user,
// refuse deactivated users, and warm the identity cache so the first
// proxied request needs no store read. It writes one audit event.
func (p *Proxy) login(ctx context.Context, in session.Identity) (string, error) {
	ev := []zap.Field{zap.String("event", "login"), zap.String("idp", in.IdP), logString("name_id", in.NameID),
		zap.Stringer("client_ip", ClientIP(ctx)), zap.String("request_id", RequestID(ctx))}
	var storeTime time.Duration
	refuse := func(reason string, err error) (string, error) {
		p.audit.Info("login", append(ev, zap.String("outcome", "refused"), zap.String("reason", reason), zap.Error(err))...)
		jit := "refused"
		if reason == "store" {
			jit = "failed"
		}
		p.onLogin(LoginEvent{IdP: in.IdP, Outcome: "refused", Reason: reason, JIT: jit, StoreTime: storeTime})
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
	jctx, cancel := context.WithTimeout(ctx, p.cfg.JITTimeout)
	defer cancel()
	start := time.Now()
	res, err := p.store.Provision(jctx, l)
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
		p.onLogin(LoginEvent{IdP: in.IdP, Outcome: "unprovisioned", Reason: "store", JIT: "failed", StoreTime: storeTime})
		setUser(ctx, u.ID, u.UserName)
		return p.admitKnown(u, ev, err)
	default:
		return refuse("store", fmt.Errorf("%w: provision user: %w", session.ErrUnavailable, err))
	}
	p.known.remember(l.Key, res.User)
	p.users.put(p.identityOf(res.User, p.now()))
	setUser(ctx, res.User.ID, res.User.UserName)
	p.audit.Info("login", append(ev, zap.String("user_id", res.User.ID), zap.String("outcome", string(res.Outcome)),
		zap.Strings("changed", res.Changed))...)
	p.onLogin(LoginEvent{IdP: in.IdP, Outcome: string(res.Outcome), JIT: string(res.Outcome), StoreTime: storeTime})
	return res.User.ID, nil
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
