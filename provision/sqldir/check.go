package sqldir

import (
	"context"
	"errors"
)

// CheckMapped connects and reports every mismatch between the mapped
// configuration and the database, without creating anything.
func CheckMapped(ctx context.Context, cfg Config) []error {
	if cfg.Mapped == nil {
		return []error{errors.New("no mapped tables are configured")}
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []error{err}
	}
	defer d.Close()
	_, problems, err := resolveMapped(ctx, d, *cfg.Mapped)
	if err != nil {
		return []error{err}
	}
	return problems
}

// Check connects to the database of a managed store and reports whether
// gatehouse's schema is there or would be created, without creating it.
func Check(ctx context.Context, cfg Config) []error {
	if cfg.Mapped != nil {
		return CheckMapped(ctx, cfg)
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []error{err}
	}
	defer d.Close()
	if err := d.Ping(ctx); err != nil {
		return []error{err}
	}
	return nil
}
