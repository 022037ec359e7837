package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksCache is an OpenID provider's signing keys (its jwks_uri), for
// go-oidc's verifier (oidc.KeySet) and for logout tokens. A token signed
// with a key ID it does not hold makes it read the keys again, so keys
// the provider rotates in are picked up without a restart; but at most
// once per jwksMinRefetch, so that tokens naming made-up key IDs (anyone
// can post a logout token) cannot turn gatehouse into a flood on the
// provider. A failed read keeps the keys it had.
type jwksCache struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm
	now    func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time     // when the last read ended
	reading chan struct{} // closed when the read under way ends; nil: none
}

// jwksMinRefetch is the least time between two reads of the keys.
const jwksMinRefetch = 30 * time.Second

// maxJWKSBytes bounds a key set document.
const maxJWKSBytes = 256 << 10

func newJWKSCache(url string, client *http.Client, algs []string, now func() time.Time) *jwksCache {
	c := &jwksCache{url: url, client: client, now: now}
	for _, a := range algs {
		c.algs = append(c.algs, jose.SignatureAlgorithm(a))
	}
	return c
}

// VerifySignature checks a compact JWS against the provider's keys and
// returns its payload (oidc.KeySet).
func (c *jwksCache) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, c.algs)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jwt: exactly one signature is accepted")
	}
	kid := jws.Signatures[0].Header.KeyID
	for attempt := range 2 {
		keys, err := c.current(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if kid != "" && k.KeyID != kid {
				continue
			}
			if k.Use != "" && k.Use != "sig" {
				continue
			}
			if payload, err := jws.Verify(k.Key); err == nil {
				return payload, nil
			}
		}
	}
	return nil, errors.New("jwt: no key of the provider verifies the signature")
}

// current returns the keys, reading them first when none are held, or
// when refresh asks and the last read is old enough. One read runs at a
// time, outside the lock, and is not cancelled with the request that
// started it (a client hanging up must not leave the cache empty or
// stale); a caller waiting for another's read stops waiting when its own
// context ends.
func (c *jwksCache) current(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error) {
	for {
		c.mu.Lock()
		now := c.now()
		recent := !c.fetched.IsZero() && now.Sub(c.fetched) < jwksMinRefetch
		switch {
		case c.keys != nil && (!refresh || recent):
			keys := c.keys
			c.mu.Unlock()
			return keys, nil
		case c.keys == nil && recent:
			c.mu.Unlock()
			return nil, errors.New("the provider's keys could not be read a moment ago")
		}
		if wait := c.reading; wait != nil {
			held := c.keys
			c.mu.Unlock()
			select {
			case <-wait:
				continue // the read is done: decide again
			case <-ctx.Done():
				if held != nil {
					return held, nil
				}
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.reading = done
		c.mu.Unlock()

		keys, err := c.fetch(context.WithoutCancel(ctx))
		c.mu.Lock()
		c.fetched, c.reading = c.now(), nil
		if err == nil {
			c.keys = keys
		}
		held := c.keys
		c.mu.Unlock()
		close(done)
		if err != nil {
			if held != nil {
				return held, nil // keep the keys held
			}
			return nil, err
		}
		return keys, nil
	}
}

func (c *jwksCache) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the provider's keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the provider's keys: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the provider's keys: %w", err)
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("read the provider's keys: larger than %d bytes", maxJWKSBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("the provider's keys: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.IsPublic() && k.Valid() {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("the provider's key set holds no public signing key")
	}
	return keys, nil
}
