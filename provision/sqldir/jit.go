package sqldir

import (
	"context"
	"fmt"
	"time"

	"gatehouse/provision"
)

// upsert runs one login on a SQL store. fast reads, outside any
// transaction, the user the login's key names (nil when none): a repeat
// login with nothing new ends there, with no lock and no write. Otherwise
// a write transaction reads again under the dialect's locks (find), asks
// provision.Decide, and carries out the plan (apply).
func (d *db) upsert(ctx context.Context, l provision.Login,
	fast func() (*provision.Found, error),
	find func(q querier) (provision.Found, error),
	apply func(q querier, p provision.Plan, now time.Time) (provision.Result, error),
) (provision.Result, error) {
	f, err := fast()
	if err != nil {
		return provision.Result{}, err
	}
	if f != nil {
		p, err := provision.Decide(l, *f)
		if err != nil {
			return p.Result(), fmt.Errorf("sqldir: %w", err)
		}
		if p.Action == provision.ActNothing {
			return p.Result(), nil
		}
	}
	var res provision.Result
	err = d.write(ctx, func(q querier, now time.Time) error {
		f, err := find(q)
		if err != nil {
			return err
		}
		p, err := provision.Decide(l, f)
		if err != nil {
			res = p.Result()
			return fmt.Errorf("sqldir: %w", err)
		}
		res, err = apply(q, p, now)
		return err
	})
	return res, err
}

// preview is what a login would do, given what a read found.
func preview(l provision.Login, f provision.Found, err error) (provision.Result, error) {
	if err != nil {
		return provision.Result{}, err
	}
	p, err := provision.Decide(l, f)
	if err != nil {
		return p.Result(), fmt.Errorf("sqldir: %w", err)
	}
	return p.Result(), nil
}
