// Package memstore owns the in-memory implementation of store.Store, used by
// the dev mode (one process, nothing to install) and by unit tests of the
// packages built on the store.
//
// It follows the Redis backend's semantics exactly (the conformance suite in
// store/storetest checks both): records expire after their ttl, single-use
// tickets are consumed atomically, grants are updated by compare-and-swap on
// their Version, and every value is deep-copied on the way in and out so a
// caller can never alias stored state. Time comes from Options.Now, which lets
// tests drive expiry with a fake clock.
//
// State lives in one process, so a memstore cannot be shared by replicas.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/internal/backend"
)

// sweepInterval is how often a write also drops expired records. Reads check
// expiry lazily, so sweeping only bounds memory; it needs no goroutine (and
// thus no Close to stop it) because writes trigger it.
const sweepInterval = time.Minute

// Options configures a Store.
type Options struct {
	// Now returns the current time; nil means time.Now. Tests inject a fake
	// clock to exercise expiry without sleeping.
	Now func() time.Time
}

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	closed    bool
	lastSweep time.Time
	clients   map[string]entry[store.Client]
	tickets   map[ticketKey]entry[[]byte]
	spent     map[ticketKey]entry[[]byte]
	grants    map[string]entry[store.Grant]
	keySet    []byte
	hasKeySet bool
	cache     map[string]entry[[]byte]
	locks     map[string]entry[uint64] // value: owner token
	lockSeq   uint64
	counters  map[string]entry[int64]
	events    entry[[][]byte] // newest last
}

var _ store.Store = (*Store)(nil)

// entry is a stored value with its expiry; a zero exp never expires.
type entry[T any] struct {
	v   T
	exp time.Time
}

func (e entry[T]) live(now time.Time) bool { return e.exp.IsZero() || now.Before(e.exp) }

type ticketKey struct {
	kind store.Kind
	id   string
}

var errClosed = errors.New("memstore: store is closed")

// New returns an empty Store.
func New(opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:       now,
		lastSweep: now(),
		clients:   map[string]entry[store.Client]{},
		tickets:   map[ticketKey]entry[[]byte]{},
		spent:     map[ticketKey]entry[[]byte]{},
		grants:    map[string]entry[store.Grant]{},
		cache:     map[string]entry[[]byte]{},
		locks:     map[string]entry[uint64]{},
		counters:  map[string]entry[int64]{},
	}
}

// expiry turns a ttl into an absolute expiry; 0 means never.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// lookup returns the live entry under k, dropping it if it has expired.
func lookup[K comparable, T any](m map[K]entry[T], k K, now time.Time) (entry[T], bool) {
	e, ok := m[k]
	if !ok {
		return e, false
	}
	if !e.live(now) {
		delete(m, k)
		return e, false
	}
	return e, true
}

func sweep[K comparable, T any](m map[K]entry[T], now time.Time) {
	for k, e := range m {
		if !e.live(now) {
			delete(m, k)
		}
	}
}

// tx runs one operation under the store's lock with the current time (dex's
// memory storage idiom: the lock is taken and released in one place). It
// fails once the store is closed.
func (s *Store) tx(fn func(now time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return fn(s.now())
}

// txWrite is tx plus an occasional sweep of expired records.
func (s *Store) txWrite(fn func(now time.Time) error) error {
	return s.tx(func(now time.Time) error {
		if now.Sub(s.lastSweep) >= sweepInterval {
			s.lastSweep = now
			sweep(s.clients, now)
			sweep(s.tickets, now)
			sweep(s.spent, now)
			sweep(s.grants, now)
			sweep(s.cache, now)
			sweep(s.locks, now)
			sweep(s.counters, now)
		}
		return fn(now)
	})
}

// get returns a copy of the live value under k in the map m returns (read
// inside the transaction: Close drops the maps).
func get[K comparable, T any](s *Store, m func() map[K]entry[T], k K, clone func(T) T) (v T, err error) {
	err = s.tx(func(now time.Time) error {
		e, ok := lookup(m(), k, now)
		if !ok {
			return store.ErrNotFound
		}
		v = clone(e.v)
		return nil
	})
	return v, err
}

// Ping implements store.Store.
func (s *Store) Ping(context.Context) error {
	return s.tx(func(time.Time) error { return nil })
}

// Close implements store.Store: it drops all state.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.clients, s.tickets, s.spent, s.grants, s.cache, s.locks, s.counters = nil, nil, nil, nil, nil, nil, nil
	s.keySet, s.hasKeySet = nil, false
	return nil
}

// --- Clients ---

// CreateClient implements store.Clients.
func (s *Store) CreateClient(_ context.Context, c store.Client, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("create client", ttl); err != nil {
		return err
	}
	return s.txWrite(func(now time.Time) error {
		if _, ok := lookup(s.clients, c.ID, now); ok {
			return store.ErrAlreadyExists
		}
		s.clients[c.ID] = entry[store.Client]{store.CloneClient(c), expiry(now, ttl)}
		return nil
	})
}

// PutClient implements store.Clients.
func (s *Store) PutClient(_ context.Context, c store.Client, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("put client", ttl); err != nil {
		return err
	}
	return s.txWrite(func(now time.Time) error {
		s.clients[c.ID] = entry[store.Client]{store.CloneClient(c), expiry(now, ttl)}
		return nil
	})
}

// GetClient implements store.Clients.
func (s *Store) GetClient(_ context.Context, id string) (store.Client, error) {
	return get(s, func() map[string]entry[store.Client] { return s.clients }, id, store.CloneClient)
}

// TouchClient implements store.Clients.
func (s *Store) TouchClient(_ context.Context, id string, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("touch client", ttl); err != nil {
		return err
	}
	return s.txWrite(func(now time.Time) error {
		e, ok := lookup(s.clients, id, now)
		if !ok {
			return store.ErrNotFound
		}
		e.exp = expiry(now, ttl)
		s.clients[id] = e
		return nil
	})
}

// DeleteClient implements store.Clients.
func (s *Store) DeleteClient(_ context.Context, id string) error {
	return s.tx(func(time.Time) error {
		delete(s.clients, id)
		return nil
	})
}

// --- Tickets ---

// PutTicket implements store.Tickets.
func (s *Store) PutTicket(_ context.Context, kind store.Kind, id string, value []byte, ttl time.Duration) error {
	if err := backend.PositiveTTL("put ticket", ttl); err != nil {
		return err
	}
	return s.txWrite(func(now time.Time) error {
		k := ticketKey{kind, id}
		if _, ok := lookup(s.tickets, k, now); ok {
			return store.ErrAlreadyExists
		}
		if _, ok := lookup(s.spent, k, now); ok {
			return store.ErrAlreadyExists
		}
		s.tickets[k] = entry[[]byte]{bytes.Clone(value), expiry(now, ttl)}
		return nil
	})
}

// PeekTicket implements store.Tickets.
func (s *Store) PeekTicket(_ context.Context, kind store.Kind, id string) ([]byte, error) {
	return get(s, func() map[ticketKey]entry[[]byte] { return s.tickets }, ticketKey{kind, id}, bytes.Clone)
}

// ConsumeTicket implements store.Tickets.
func (s *Store) ConsumeTicket(_ context.Context, kind store.Kind, id string, keepSpent time.Duration) (v []byte, err error) {
	err = s.txWrite(func(now time.Time) error {
		k := ticketKey{kind, id}
		if e, ok := lookup(s.tickets, k, now); ok {
			delete(s.tickets, k)
			if keepSpent > 0 {
				s.spent[k] = entry[[]byte]{e.v, expiry(now, keepSpent)}
			}
			v = bytes.Clone(e.v)
			return nil
		}
		if e, ok := lookup(s.spent, k, now); ok {
			v = bytes.Clone(e.v)
			return store.ErrSpent
		}
		return store.ErrNotFound
	})
	return v, err
}

// --- Grants ---

// CreateGrant implements store.Grants. The stored grant starts at Version 1.
func (s *Store) CreateGrant(_ context.Context, g store.Grant, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("create grant", ttl); err != nil {
		return err
	}
	return s.txWrite(func(now time.Time) error {
		if _, ok := lookup(s.grants, g.ID, now); ok {
			return store.ErrAlreadyExists
		}
		g = store.CloneGrant(g)
		g.Version = 1
		s.grants[g.ID] = entry[store.Grant]{g, expiry(now, ttl)}
		return nil
	})
}

// GetGrant implements store.Grants.
func (s *Store) GetGrant(_ context.Context, id string) (store.Grant, error) {
	return get(s, func() map[string]entry[store.Grant] { return s.grants }, id, store.CloneGrant)
}

// UpdateGrant implements store.Grants with the same optimistic loop as the
// Redis backend; fn runs without the store's lock held.
func (s *Store) UpdateGrant(ctx context.Context, id string, ttl time.Duration, fn func(g *store.Grant) error) (store.Grant, error) {
	return backend.UpdateGrant(ctx, id, ttl, fn, s.GetGrant, s.casGrant)
}

func (s *Store) casGrant(_ context.Context, expect int64, next store.Grant, ttl time.Duration) (swapped bool, err error) {
	err = s.txWrite(func(now time.Time) error {
		e, ok := lookup(s.grants, next.ID, now)
		if !ok {
			return store.ErrNotFound
		}
		if e.v.Version != expect {
			return nil
		}
		if ttl > 0 {
			e.exp = expiry(now, ttl)
		}
		e.v = store.CloneGrant(next)
		s.grants[next.ID] = e
		swapped = true
		return nil
	})
	return swapped, err
}

// DeleteGrant implements store.Grants.
func (s *Store) DeleteGrant(_ context.Context, id string) error {
	return s.tx(func(time.Time) error {
		delete(s.grants, id)
		return nil
	})
}

// --- Key sets ---

// GetOrCreateKeySet implements store.KeySets.
func (s *Store) GetOrCreateKeySet(_ context.Context, candidate []byte) (ks []byte, err error) {
	err = s.tx(func(time.Time) error {
		if !s.hasKeySet {
			s.keySet, s.hasKeySet = bytes.Clone(candidate), true
		}
		ks = bytes.Clone(s.keySet)
		return nil
	})
	return ks, err
}

// SwapKeySet implements store.KeySets; ErrNotFound when no key set exists.
func (s *Store) SwapKeySet(_ context.Context, old, next []byte) (current []byte, swapped bool, err error) {
	err = s.tx(func(time.Time) error {
		if !s.hasKeySet {
			return store.ErrNotFound
		}
		if bytes.Equal(s.keySet, old) {
			s.keySet, swapped = bytes.Clone(next), true
		}
		current = bytes.Clone(s.keySet)
		return nil
	})
	return current, swapped, err
}

// --- Cache ---

// GetCache implements store.Cache.
func (s *Store) GetCache(_ context.Context, key string) ([]byte, error) {
	return get(s, func() map[string]entry[[]byte] { return s.cache }, key, bytes.Clone)
}

// SetCache implements store.Cache.
func (s *Store) SetCache(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := backend.PositiveTTL("set cache", ttl); err != nil {
		return err
	}
	return s.txWrite(func(now time.Time) error {
		s.cache[key] = entry[[]byte]{bytes.Clone(value), expiry(now, ttl)}
		return nil
	})
}

// DeleteCache implements store.Cache.
func (s *Store) DeleteCache(_ context.Context, key string) error {
	return s.tx(func(time.Time) error {
		delete(s.cache, key)
		return nil
	})
}

// --- Locks ---

// TryLock implements store.Locker.
func (s *Store) TryLock(_ context.Context, name string, ttl time.Duration) (release func(context.Context) error, held bool, err error) {
	if err := backend.PositiveTTL("try lock", ttl); err != nil {
		return nil, false, err
	}
	err = s.txWrite(func(now time.Time) error {
		if _, ok := lookup(s.locks, name, now); ok {
			return nil
		}
		// Each lease gets its own token so a holder whose lease expired
		// cannot release the lease someone else took since.
		s.lockSeq++
		token := s.lockSeq
		s.locks[name] = entry[uint64]{token, expiry(now, ttl)}
		release = func(context.Context) error {
			return s.tx(func(now time.Time) error {
				if e, ok := lookup(s.locks, name, now); ok && e.v == token {
					delete(s.locks, name)
				}
				return nil
			})
		}
		held = true
		return nil
	})
	if err != nil || !held {
		return nil, false, err
	}
	return release, true, nil
}

// --- Counters ---

// Hit implements store.Counters.
func (s *Store) Hit(_ context.Context, name string, window time.Duration) (n int64, resetIn time.Duration, err error) {
	if err := backend.PositiveTTL("hit", window); err != nil {
		return 0, 0, err
	}
	err = s.txWrite(func(now time.Time) error {
		e, ok := lookup(s.counters, name, now)
		if !ok {
			e = entry[int64]{0, expiry(now, window)}
		}
		e.v++
		s.counters[name] = e
		n, resetIn = e.v, e.exp.Sub(now)
		return nil
	})
	return n, resetIn, err
}

// --- Grant index ---

// The memory store has no index to keep: a listing walks every grant under
// the lock, which is exact and cheap at the sizes a single process holds.

// ListGrantsByUser implements store.GrantIndex.
func (s *Store) ListGrantsByUser(_ context.Context, userID string) ([]store.Grant, error) {
	return s.listGrants(func(g store.Grant) bool { return g.UserID == userID })
}

// ListGrantsByClient implements store.GrantIndex.
func (s *Store) ListGrantsByClient(_ context.Context, clientID string) ([]store.Grant, error) {
	return s.listGrants(func(g store.Grant) bool { return g.ClientID == clientID })
}

func (s *Store) listGrants(match func(store.Grant) bool) (out []store.Grant, err error) {
	err = s.tx(func(now time.Time) error {
		for _, e := range s.grants {
			if e.live(now) && match(e.v) {
				out = append(out, store.CloneGrant(e.v))
			}
		}
		return nil
	})
	return out, err
}

// ListGrantClients implements store.GrantIndex.
func (s *Store) ListGrantClients(context.Context) (out []string, err error) {
	err = s.tx(func(now time.Time) error {
		seen := map[string]bool{}
		for _, e := range s.grants {
			if e.live(now) && !seen[e.v.ClientID] {
				seen[e.v.ClientID] = true
				out = append(out, e.v.ClientID)
			}
		}
		return nil
	})
	return out, err
}

// ListClients implements store.GrantIndex.
func (s *Store) ListClients(context.Context) (out []store.Client, err error) {
	err = s.tx(func(now time.Time) error {
		for _, e := range s.clients {
			if e.live(now) {
				out = append(out, store.CloneClient(e.v))
			}
		}
		return nil
	})
	return out, err
}

// --- Events ---

// AppendEvent implements store.Events.
func (s *Store) AppendEvent(_ context.Context, value []byte, max int, ttl time.Duration) error {
	if err := backend.PositiveTTL("append event", ttl); err != nil {
		return err
	}
	if max <= 0 {
		return errors.New("memstore: append event: max must be positive")
	}
	return s.txWrite(func(now time.Time) error {
		evs := s.events.v
		if !s.events.live(now) {
			evs = nil
		}
		evs = append(evs, bytes.Clone(value))
		if len(evs) > max {
			evs = append([][]byte(nil), evs[len(evs)-max:]...)
		}
		s.events = entry[[][]byte]{evs, expiry(now, ttl)}
		return nil
	})
}

// RecentEvents implements store.Events.
func (s *Store) RecentEvents(_ context.Context, n int) (out [][]byte, err error) {
	err = s.tx(func(now time.Time) error {
		if !s.events.live(now) {
			s.events = entry[[][]byte]{}
			return nil
		}
		evs := s.events.v
		for i := len(evs) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, bytes.Clone(evs[i]))
		}
		return nil
	})
	return out, err
}
