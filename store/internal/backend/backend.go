// Package backend holds the logic the store backends (memstore, redisstore)
// share so that they cannot drift apart: the optimistic UpdateGrant loop and
// the validation of durations handed to the store.
package backend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// MaxUpdateAttempts bounds the optimistic UpdateGrant loop. Every lost race
// means some other writer committed in between, so with N concurrent writers
// that each update once a writer loses at most N-1 times; 50 comfortably
// covers the contention one grant sees (a client racing itself on refresh)
// while still ending a pathological livelock with ErrConflict.
const MaxUpdateAttempts = 50

// GrantCAS is the one backend-specific step of UpdateGrant: store next if the
// stored grant still has version expect. It reports false when another writer
// got there first and store.ErrNotFound when the grant is gone. ttl > 0 resets
// the expiry; 0 keeps it.
type GrantCAS func(ctx context.Context, expect int64, next store.Grant, ttl time.Duration) (bool, error)

// UpdateGrant implements store.Grants.UpdateGrant on top of a read and a
// compare-and-swap. fn always works on a private deep copy, so an aborted or
// lost attempt leaves nothing behind, and fn runs with no lock held, so it may
// safely call back into the store.
func UpdateGrant(ctx context.Context, id string, ttl time.Duration, fn func(*store.Grant) error,
	get func(context.Context, string) (store.Grant, error), cas GrantCAS) (store.Grant, error) {
	if err := NonNegativeTTL("update grant", ttl); err != nil {
		return store.Grant{}, err
	}
	for attempt := range MaxUpdateAttempts {
		cur, err := get(ctx, id)
		if err != nil {
			return store.Grant{}, err
		}
		next := store.CloneGrant(cur)
		if err := fn(&next); err != nil {
			return store.Grant{}, err // as is, per the interface
		}
		// The id and the version belong to the store, whatever fn did.
		next.ID = cur.ID
		next.Version = cur.Version + 1
		ok, err := cas(ctx, cur.Version, next, ttl)
		if err != nil {
			return store.Grant{}, err
		}
		if ok {
			return next, nil
		}
		if err := backoff(ctx, attempt); err != nil {
			return store.Grant{}, err
		}
	}
	return store.Grant{}, store.ErrConflict
}

// backoff sleeps a little, with full jitter so that writers which just
// collided do not collide again in lock step.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err() // the first retry is usually enough; don't wait
	}
	ceiling := min(time.Duration(1<<min(attempt, 10))*100*time.Microsecond, 10*time.Millisecond)
	t := time.NewTimer(rand.N(ceiling) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PositiveTTL rejects a duration that must make the record expire: tickets,
// cache entries, leases and counter windows never live forever.
func PositiveTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("store: %s: ttl must be positive, got %v", op, ttl)
	}
	return nil
}

// NonNegativeTTL rejects a negative duration where 0 means "no expiry" (or
// "keep the expiry" for updates).
func NonNegativeTTL(op string, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("store: %s: ttl must not be negative, got %v", op, ttl)
	}
	return nil
}
