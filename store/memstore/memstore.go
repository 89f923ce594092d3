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

// begin locks the store for one operation and returns the current time. The
// caller must s.mu.Unlock().
func (s *Store) begin() (time.Time, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return time.Time{}, errClosed
	}
	return s.now(), nil
}

// beginWrite is begin plus an occasional sweep of expired records.
func (s *Store) beginWrite() (time.Time, error) {
	now, err := s.begin()
	if err != nil {
		return now, err
	}
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
	return now, nil
}

// Ping implements store.Store.
func (s *Store) Ping(context.Context) error {
	if _, err := s.begin(); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
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
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := lookup(s.clients, c.ID, now); ok {
		return store.ErrAlreadyExists
	}
	s.clients[c.ID] = entry[store.Client]{store.CloneClient(c), expiry(now, ttl)}
	return nil
}

// PutClient implements store.Clients.
func (s *Store) PutClient(_ context.Context, c store.Client, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("put client", ttl); err != nil {
		return err
	}
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.clients[c.ID] = entry[store.Client]{store.CloneClient(c), expiry(now, ttl)}
	return nil
}

// GetClient implements store.Clients.
func (s *Store) GetClient(_ context.Context, id string) (store.Client, error) {
	now, err := s.begin()
	if err != nil {
		return store.Client{}, err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.clients, id, now)
	if !ok {
		return store.Client{}, store.ErrNotFound
	}
	return store.CloneClient(e.v), nil
}

// TouchClient implements store.Clients.
func (s *Store) TouchClient(_ context.Context, id string, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("touch client", ttl); err != nil {
		return err
	}
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.clients, id, now)
	if !ok {
		return store.ErrNotFound
	}
	e.exp = expiry(now, ttl)
	s.clients[id] = e
	return nil
}

// DeleteClient implements store.Clients.
func (s *Store) DeleteClient(_ context.Context, id string) error {
	if _, err := s.begin(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.clients, id)
	return nil
}

// --- Tickets ---

// PutTicket implements store.Tickets.
func (s *Store) PutTicket(_ context.Context, kind store.Kind, id string, value []byte, ttl time.Duration) error {
	if err := backend.PositiveTTL("put ticket", ttl); err != nil {
		return err
	}
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := ticketKey{kind, id}
	if _, ok := lookup(s.tickets, k, now); ok {
		return store.ErrAlreadyExists
	}
	if _, ok := lookup(s.spent, k, now); ok {
		return store.ErrAlreadyExists
	}
	s.tickets[k] = entry[[]byte]{bytes.Clone(value), expiry(now, ttl)}
	return nil
}

// PeekTicket implements store.Tickets.
func (s *Store) PeekTicket(_ context.Context, kind store.Kind, id string) ([]byte, error) {
	now, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.tickets, ticketKey{kind, id}, now)
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(e.v), nil
}

// ConsumeTicket implements store.Tickets.
func (s *Store) ConsumeTicket(_ context.Context, kind store.Kind, id string, keepSpent time.Duration) ([]byte, error) {
	now, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	k := ticketKey{kind, id}
	if e, ok := lookup(s.tickets, k, now); ok {
		delete(s.tickets, k)
		if keepSpent > 0 {
			s.spent[k] = entry[[]byte]{e.v, expiry(now, keepSpent)}
		}
		return bytes.Clone(e.v), nil
	}
	if e, ok := lookup(s.spent, k, now); ok {
		return bytes.Clone(e.v), store.ErrSpent
	}
	return nil, store.ErrNotFound
}

// --- Grants ---

// CreateGrant implements store.Grants. The stored grant starts at Version 1.
func (s *Store) CreateGrant(_ context.Context, g store.Grant, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("create grant", ttl); err != nil {
		return err
	}
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := lookup(s.grants, g.ID, now); ok {
		return store.ErrAlreadyExists
	}
	g = store.CloneGrant(g)
	g.Version = 1
	s.grants[g.ID] = entry[store.Grant]{g, expiry(now, ttl)}
	return nil
}

// GetGrant implements store.Grants.
func (s *Store) GetGrant(_ context.Context, id string) (store.Grant, error) {
	now, err := s.begin()
	if err != nil {
		return store.Grant{}, err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.grants, id, now)
	if !ok {
		return store.Grant{}, store.ErrNotFound
	}
	return store.CloneGrant(e.v), nil
}

// UpdateGrant implements store.Grants with the same optimistic loop as the
// Redis backend; fn runs without the store's lock held.
func (s *Store) UpdateGrant(ctx context.Context, id string, ttl time.Duration, fn func(g *store.Grant) error) (store.Grant, error) {
	return backend.UpdateGrant(ctx, id, ttl, fn, s.GetGrant, s.casGrant)
}

func (s *Store) casGrant(_ context.Context, expect int64, next store.Grant, ttl time.Duration) (bool, error) {
	now, err := s.beginWrite()
	if err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.grants, next.ID, now)
	if !ok {
		return false, store.ErrNotFound
	}
	if e.v.Version != expect {
		return false, nil
	}
	if ttl > 0 {
		e.exp = expiry(now, ttl)
	}
	e.v = store.CloneGrant(next)
	s.grants[next.ID] = e
	return true, nil
}

// DeleteGrant implements store.Grants.
func (s *Store) DeleteGrant(_ context.Context, id string) error {
	if _, err := s.begin(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.grants, id)
	return nil
}

// --- Key sets ---

// GetOrCreateKeySet implements store.KeySets.
func (s *Store) GetOrCreateKeySet(_ context.Context, candidate []byte) ([]byte, error) {
	if _, err := s.begin(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if !s.hasKeySet {
		s.keySet, s.hasKeySet = bytes.Clone(candidate), true
	}
	return bytes.Clone(s.keySet), nil
}

// SwapKeySet implements store.KeySets; ErrNotFound when no key set exists.
func (s *Store) SwapKeySet(_ context.Context, old, next []byte) ([]byte, bool, error) {
	if _, err := s.begin(); err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	if !s.hasKeySet {
		return nil, false, store.ErrNotFound
	}
	if !bytes.Equal(s.keySet, old) {
		return bytes.Clone(s.keySet), false, nil
	}
	s.keySet = bytes.Clone(next)
	return bytes.Clone(s.keySet), true, nil
}

// --- Cache ---

// GetCache implements store.Cache.
func (s *Store) GetCache(_ context.Context, key string) ([]byte, error) {
	now, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.cache, key, now)
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(e.v), nil
}

// SetCache implements store.Cache.
func (s *Store) SetCache(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := backend.PositiveTTL("set cache", ttl); err != nil {
		return err
	}
	now, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.cache[key] = entry[[]byte]{bytes.Clone(value), expiry(now, ttl)}
	return nil
}

// DeleteCache implements store.Cache.
func (s *Store) DeleteCache(_ context.Context, key string) error {
	if _, err := s.begin(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.cache, key)
	return nil
}

// --- Locks ---

// TryLock implements store.Locker.
func (s *Store) TryLock(_ context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if err := backend.PositiveTTL("try lock", ttl); err != nil {
		return nil, false, err
	}
	now, err := s.beginWrite()
	if err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	if _, ok := lookup(s.locks, name, now); ok {
		return nil, false, nil
	}
	// Each lease gets its own token so a holder whose lease expired cannot
	// release the lease someone else took since.
	s.lockSeq++
	token := s.lockSeq
	s.locks[name] = entry[uint64]{token, expiry(now, ttl)}
	release := func(context.Context) error {
		now, err := s.begin()
		if err != nil {
			return err
		}
		defer s.mu.Unlock()
		if e, ok := lookup(s.locks, name, now); ok && e.v == token {
			delete(s.locks, name)
		}
		return nil
	}
	return release, true, nil
}

// --- Counters ---

// Hit implements store.Counters.
func (s *Store) Hit(_ context.Context, name string, window time.Duration) (int64, time.Duration, error) {
	if err := backend.PositiveTTL("hit", window); err != nil {
		return 0, 0, err
	}
	now, err := s.beginWrite()
	if err != nil {
		return 0, 0, err
	}
	defer s.mu.Unlock()
	e, ok := lookup(s.counters, name, now)
	if !ok {
		e = entry[int64]{0, expiry(now, window)}
	}
	e.v++
	s.counters[name] = e
	return e.v, e.exp.Sub(now), nil
}
