package sqldir

import (
	"context"
	"errors"
)

// CheckMapped connects and reports every mismatch between the mapped
// configuration and the database, without creating anything. Each
// problem's key is within the store's section (mapped.users.columns.email);
// a failure to connect or to ask has no key.
func CheckMapped(ctx context.Context, cfg Config) []Problem {
	if cfg.Mapped == nil {
		return []Problem{problemf("mapped", "no mapped tables are configured")}
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []Problem{{Err: err}}
	}
	defer d.Close()
	_, problems, err := resolveMapped(ctx, d, *cfg.Mapped)
	if err != nil {
		return []Problem{{Err: err}}
	}
	out := make([]Problem, 0, len(problems))
	for _, e := range problems {
		var p Problem
		if !errors.As(e, &p) {
			p = Problem{Err: e}
		} else {
			p.Key = "mapped." + p.Key
		}
		out = append(out, p)
	}
	return out
}

// Check connects to the database of a managed store and reports whether
// gatehouse's schema is there or would be created, without creating it;
// with mapped tables it is CheckMapped.
func Check(ctx context.Context, cfg Config) []Problem {
	if cfg.Mapped != nil {
		return CheckMapped(ctx, cfg)
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []Problem{{Err: err}}
	}
	defer d.Close()
	if err := d.Ping(ctx); err != nil {
		return []Problem{{Err: err}}
	}
	return nil
}
