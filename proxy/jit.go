package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/session"
)

// ephemeralPrefix marks the IDs of users admitted without the store (see
// IdPPolicy.ContinueOnStoreError). Store IDs never start with it.
const ephemeralPrefix = "ephemeral:"

// login is the JIT step of the ACS: map the assertion, upsert the user,
// refuse deactivated users, and warm the identity cache so the first
// proxied request needs no store read. It writes one audit event.
func (p *Proxy) login(ctx context.Context, in session.Identity) (string, error) {
	ev := []zap.Field{zap.String("idp", in.IdP), zap.String("name_id", in.NameID)}
	refuse := func(reason string, err error) (string, error) {
		p.audit.Info("login", append(ev, zap.String("outcome", "refused"), zap.String("reason", reason), zap.Error(err))...)
		return "", err
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
	res, err := p.store.Provision(jctx, l)
	switch {
	case err == nil:
	case errors.Is(err, provision.ErrDisabled):
		return refuse("disabled", fmt.Errorf("%w: %w", session.ErrAccessDenied, err))
	case errors.Is(err, provision.ErrNotFound):
		return refuse("not_provisioned", fmt.Errorf("%w: user does not exist and this idp may not create users: %w", session.ErrAccessDenied, err))
	case errors.Is(err, provision.ErrInvalid), errors.Is(err, provision.ErrNoKey), errors.Is(err, provision.ErrConflict):
		return refuse("rejected", fmt.Errorf("provision user: %w", err))
	case pol.ContinueOnStoreError:
		return p.admitUnprovisioned(l, ev, err)
	default:
		return refuse("store", fmt.Errorf("%w: provision user: %w", session.ErrUnavailable, err))
	}
	p.users.put(p.identityOf(res.User, p.now()))
	p.audit.Info("login", append(ev, zap.String("user_id", res.User.ID), zap.String("outcome", string(res.Outcome)),
		zap.Strings("changed", res.Changed))...)
	return res.User.ID, nil
}

// admitUnprovisioned lets a login through with headers built from the
// assertion alone, when the IdP's policy allows it and the store is down.
// The identity lives only in this process's memory.
func (p *Proxy) admitUnprovisioned(l provision.Login, ev []zap.Field, storeErr error) (string, error) {
	var b [18]byte
	rand.Read(b[:])
	u := provision.User{ID: ephemeralPrefix + base64.RawURLEncoding.EncodeToString(b[:]), Active: true, Groups: l.Claims.Groups}
	u.Apply(l.Claims)
	e := p.identityOf(u, p.now())
	e.ephemeral = true
	p.users.put(e)
	p.audit.Warn("login", append(ev, zap.String("user_id", u.ID), zap.String("outcome", "unprovisioned"), zap.Error(storeErr))...)
	return u.ID, nil
}
