// Package redisstore owns the production implementation of store.Store, on
// Redis through go-redis v9's UniversalClient, so a single node, a Sentinel
// setup or a Cluster all work. Any number of proxy replicas share one Redis.
//
// # URLs
//
// New accepts these URL forms (percent-encode reserved characters such as
// '@', '/', '?', '#' and ':' in user names and passwords):
//
//	redis://[user:pass@]host[:port][/db]               a single node (port 6379, db 0 by default)
//	rediss://[user:pass@]host[:port][/db]              the same over TLS
//	redis://[user:pass@]h1:6379,h2:6379[,...][/0]      a Cluster, given two or more seed nodes
//	redis+cluster://[user:pass@]host[:port][,...][/0]  a Cluster, given any number of seeds (e.g.
//	                                                   a single configuration endpoint)
//	redis+sentinel://[user:pass@]h1:26379[,...]/mymaster[/db]
//	                                                   Sentinel (port 26379 by default); the user
//	                                                   info authenticates to the Redis nodes
//	rediss+cluster://..., rediss+sentinel://...        TLS variants
//
// IPv6 hosts go in brackets: redis://[::1]:6379. Query parameters:
// dial_timeout, read_timeout, write_timeout (a Go duration such as 500ms or a
// number of seconds), pool_size, client_name, and for Sentinel only
// sentinel_username and sentinel_password, the credentials of the Sentinels
// themselves when they differ from the nodes'. Unknown parameters are errors.
// Error messages never repeat any part of the URL, which may hold a password.
//
// # Keys
//
// Every key starts with the configured prefix (default "cmp:"):
//
//	<prefix>client:{<id>}                 JSON client; TTL unless registered with ttl 0
//	<prefix>ticket:<kind>:{<id>}          ticket value; TTL
//	<prefix>ticket:<kind>:{<id>}:spent    spent marker holding the value; TTL
//	<prefix>grant:{<id>}                  hash: v = version, d = JSON grant; TTL unless created with ttl 0
//	<prefix>grants:user:{<user id>}       set of grant ids (index); TTL >= its grants' (see below)
//	<prefix>grants:client:{<client id>}   set of grant ids (index); TTL >= its grants'
//	<prefix>keyset                        sealed key set; no TTL
//	<prefix>cache:{<key>}                 cached value; TTL
//	<prefix>lock:{<name>}                 lease owner token; TTL
//	<prefix>rate:{<name>}                 fixed-window counter; TTL
//	<prefix>events                        list of recent security events, newest first; capped; TTL
//
// The braces are Redis Cluster hash tags: a ticket and its spent marker share
// one, so the scripts that touch both stay in one slot. Because everything
// after the first '}' differs only in a suffix, the two keys share the tag
// whatever the prefix or id contain, except when the tag would be empty (an
// empty id, or one starting with '}'): ticket operations refuse those ids.
// Ids are hashes in practice.
//
// A grant and its two index sets live in different hash slots, so they
// cannot change in one script on Cluster. Order keeps the index complete
// instead: an index set gains the grant id and an expiry of at least the
// grant's ttl plus indexSlack before the grant is written (on create and on
// every update that resets the grant's ttl), and DeleteGrant deletes the
// grant before removing the id from the sets. A set therefore never expires
// or drops an id while its grant lives, and outlives its last grant by at most
// indexSlack. Ids whose grant has gone are skipped and pruned by listings.
//
// Atomic multi-step operations are Lua scripts (see scripts.go); nothing does
// get-then-write from Go except UpdateGrant, which is a compare-and-swap loop.
//
// # Durability on failover
//
// With Options.WaitReplicas set, the writes that must survive a Sentinel or
// Cluster failover (clients, grants, grant deletion, spending a code) wait
// for that many replicas with WAIT; see wait.go.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store/internal/backend"
)

// DefaultPrefix is used when no prefix is configured.
const DefaultPrefix = "cmp:"

// Options configures New.
type Options struct {
	// URL locates Redis; see the package documentation for the forms.
	URL string
	// Prefix starts every key; empty means DefaultPrefix. Give deployments that
	// share a Redis different prefixes.
	Prefix string
	// Client, when set, is used instead of dialing URL. The caller keeps
	// ownership: Store.Close does not close it. A ClusterClient given here
	// does not get the slot-map reload on network errors that New adds to
	// the clients it builds (see newClient), so it may keep routing to a
	// dead primary until its periodic reload.
	Client redis.UniversalClient
	// WaitReplicas > 0 makes the writes that must survive a failover wait
	// until that many replicas acknowledged them, for at most WaitTimeout
	// (see wait.go). 0 (the default) waits for none.
	WaitReplicas int
	// WaitTimeout bounds each wait; it must be positive (at most 10s) when
	// WaitReplicas is set.
	WaitTimeout time.Duration
}

// Store is a Redis-backed store.Store, safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	ownsC   bool
	prefix  string
	scripts scripts

	waitReplicas int
	waitTimeout  time.Duration
	onShortWait  atomic.Pointer[func(op string, acked int)]
}

var _ store.Store = (*Store)(nil)

// New connects to Redis as configured and checks that it answers a PING.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := CheckWait(opts.WaitReplicas, opts.WaitTimeout); err != nil {
		return nil, err
	}
	c, owns := opts.Client, false
	if c == nil {
		uo, err := parseURL(opts.URL)
		if err != nil {
			return nil, err
		}
		c, owns = newClient(uo), true
	}
	s := NewFromClient(c, opts.Prefix)
	s.ownsC = owns
	s.waitReplicas, s.waitTimeout = opts.WaitReplicas, opts.WaitTimeout
	if err := c.Ping(ctx).Err(); err != nil {
		if owns {
			_ = c.Close()
		}
		return nil, fmt.Errorf("redisstore: Redis is unreachable: %w", err)
	}
	return s, nil
}

// NewFromClient wraps an existing client without checking it. An empty
// prefix means DefaultPrefix. The caller keeps ownership of c: Store.Close
// does not close it.
func NewFromClient(c redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{c: c, prefix: prefix, scripts: newScripts()}
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close implements store.Store. It closes the client only if New created it.
func (s *Store) Close() error {
	if !s.ownsC {
		return nil
	}
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// --- keys ---

func (s *Store) clientKey(id string) string { return s.prefix + clientPart + id + "}" }
func (s *Store) ticketKey(kind store.Kind, id string) string {
	return s.prefix + "ticket:" + string(kind) + ":{" + id + "}"
}

// ticketKeys returns the keys of a ticket and its spent marker, which the
// scripts touch together. They share a hash tag unless the tag would be empty
// (an empty id, or one starting with '}', behind a prefix without braces);
// such ids are refused on every topology rather than only failing on Cluster.
func (s *Store) ticketKeys(op string, kind store.Kind, id string) (live, spent string, err error) {
	live = s.ticketKey(kind, id)
	spent = live + spentSuffix
	if hashTag(live) != hashTag(spent) {
		return "", "", fmt.Errorf("redisstore: %s: the ticket id cannot serve as a Redis Cluster hash tag", op)
	}
	return live, spent, nil
}

// hashTag is the part of key Redis Cluster hashes: the text between the first
// '{' and the next '}' if non-empty, else the whole key.
func hashTag(key string) string {
	_, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key
	}
	tag, _, ok := strings.Cut(rest, "}")
	if !ok || tag == "" {
		return key
	}
	return tag
}
func (s *Store) grantKey(id string) string { return s.prefix + "grant:{" + id + "}" }
func (s *Store) keySetKey() string         { return s.prefix + "keyset" }
func (s *Store) userIndexKey(id string) string {
	return s.prefix + userIndexPart + id + "}"
}
func (s *Store) clientIndexKey(id string) string {
	return s.prefix + clientIndexPart + id + "}"
}
func (s *Store) cacheKey(key string) string    { return s.prefix + "cache:{" + key + "}" }
func (s *Store) lockKey(name string) string    { return s.prefix + "lock:{" + name + "}" }
func (s *Store) counterKey(name string) string { return s.prefix + "rate:{" + name + "}" }
func (s *Store) eventsKey() string             { return s.prefix + "events" }

const (
	spentSuffix     = ":spent"
	userIndexPart   = "grants:user:{"
	clientIndexPart = "grants:client:{"
	clientPart      = "client:{"
)

// indexSlack is how much longer than its grants an index set is kept, so
// that the few milliseconds between extending the set and writing the grant
// can never leave the grant outliving its index entry.
const indexSlack = time.Minute

// --- helpers ---

// ms converts a duration to whole milliseconds for PX/PEXPIRE, rounding up
// so that a positive duration never becomes 0 (no expiry, or an error).
func ms(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// px is d rounded up to whole milliseconds, for go-redis calls that take a
// duration (go-redis would truncate 1.5ms to 1ms; rounding up never shortens
// a lifetime).
func px(d time.Duration) time.Duration { return time.Duration(ms(d)) * time.Millisecond }

// fail maps redis.Nil to store.ErrNotFound and adds context to anything else.
// Only the operation is named, never a value.
func fail(op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return store.ErrNotFound
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// errCorrupt reports a stored record that does not decode. The decoder's
// message is dropped because it can quote the record.
func errCorrupt(op string) error {
	return fmt.Errorf("redisstore: %s: stored record does not decode", op)
}

// reply decodes a script's array reply of a status code and an optional
// bulk value.
func reply(op string, res any) (int64, []byte, error) {
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return 0, nil, fmt.Errorf("redisstore: %s: unexpected script reply", op)
	}
	code, ok := arr[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("redisstore: %s: unexpected script reply", op)
	}
	if len(arr) < 2 {
		return code, nil, nil
	}
	v, ok := arr[1].(string)
	if !ok {
		return 0, nil, fmt.Errorf("redisstore: %s: unexpected script reply", op)
	}
	return code, []byte(v), nil
}

// --- Clients ---

// CreateClient implements store.Clients.
func (s *Store) CreateClient(ctx context.Context, c store.Client, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("create client", ttl); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("redisstore: create client: encode: %w", err)
	}
	key := s.clientKey(c.ID)
	var set *redis.BoolCmd
	werr := s.waitWrite(ctx, "create client", key, func(c redis.Cmdable) { set = c.SetNX(ctx, key, b, px(ttl)) })
	ok, err := set.Result()
	if err != nil {
		return fail("create client", err)
	}
	if werr != nil {
		return werr
	}
	if !ok {
		return store.ErrAlreadyExists
	}
	return nil
}

// PutClient implements store.Clients. A plain SET drops any previous expiry,
// so ttl 0 makes the client permanent.
func (s *Store) PutClient(ctx context.Context, c store.Client, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("put client", ttl); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("redisstore: put client: encode: %w", err)
	}
	key := s.clientKey(c.ID)
	var set *redis.StatusCmd
	werr := s.waitWrite(ctx, "put client", key, func(c redis.Cmdable) { set = c.Set(ctx, key, b, px(ttl)) })
	if err := set.Err(); err != nil {
		return fail("put client", err)
	}
	return werr
}

// GetClient implements store.Clients.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	b, err := s.c.Get(ctx, s.clientKey(id)).Bytes()
	if err != nil {
		return store.Client{}, fail("get client", err)
	}
	var c store.Client
	if err := json.Unmarshal(b, &c); err != nil {
		return store.Client{}, errCorrupt("get client")
	}
	return c, nil
}

// TouchClient implements store.Clients with PEXPIRE, which fails on a missing
// key; ttl 0 removes the expiry instead.
func (s *Store) TouchClient(ctx context.Context, id string, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("touch client", ttl); err != nil {
		return err
	}
	key := s.clientKey(id)
	if ttl > 0 {
		ok, err := s.c.PExpire(ctx, key, px(ttl)).Result()
		if err != nil {
			return fail("touch client", err)
		}
		if !ok {
			return store.ErrNotFound
		}
		return nil
	}
	// PERSIST answers 0 both for a missing key and for one without expiry, so
	// ask EXISTS in the same transaction.
	var exists *redis.IntCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, key)
		p.Persist(ctx, key)
		return nil
	})
	if err != nil {
		return fail("touch client", err)
	}
	if exists.Val() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// DeleteClient implements store.Clients.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.del(ctx, "delete client", s.clientKey(id))
}

// del deletes key as a write that must survive a failover.
func (s *Store) del(ctx context.Context, op, key string) error {
	var del *redis.IntCmd
	werr := s.waitWrite(ctx, op, key, func(c redis.Cmdable) { del = c.Del(ctx, key) })
	if err := del.Err(); err != nil {
		return fail(op, err)
	}
	return werr
}

// --- Tickets ---

// PutTicket implements store.Tickets: SET NX, refused while a spent marker
// for the id exists.
func (s *Store) PutTicket(ctx context.Context, kind store.Kind, id string, value []byte, ttl time.Duration) error {
	if err := backend.PositiveTTL("put ticket", ttl); err != nil {
		return err
	}
	live, spent, err := s.ticketKeys("put ticket", kind, id)
	if err != nil {
		return err
	}
	n, err := s.scripts.putTicket.Run(ctx, s.c, []string{live, spent}, value, ms(ttl)).Int64()
	if err != nil {
		return fail("put ticket", err)
	}
	if n == 0 {
		return store.ErrAlreadyExists
	}
	return nil
}

// PeekTicket implements store.Tickets.
func (s *Store) PeekTicket(ctx context.Context, kind store.Kind, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.ticketKey(kind, id)).Bytes()
	if err != nil {
		return nil, fail("peek ticket", err)
	}
	return b, nil
}

// ConsumeTicket implements store.Tickets in one script, so exactly one of any
// number of concurrent consumers gets the value.
func (s *Store) ConsumeTicket(ctx context.Context, kind store.Kind, id string, keepSpent time.Duration) ([]byte, error) {
	live, spent, err := s.ticketKeys("consume ticket", kind, id)
	if err != nil {
		return nil, err
	}
	// Spending a code must survive a failover (else the code could be
	// spent again); other tickets only cost a retry.
	var run *redis.Cmd
	consume := func(c redis.Cmdable) {
		run = runScript(ctx, c, s.scripts.consumeTicket, []string{live, spent}, ms(keepSpent))
	}
	var werr error
	if kind == store.KindCode {
		werr = s.waitWrite(ctx, "consume ticket", live, consume)
	} else {
		consume(s.c)
	}
	res, err := run.Result()
	if err != nil {
		return nil, fail("consume ticket", err)
	}
	if werr != nil {
		return nil, werr
	}
	code, v, err := reply("consume ticket", res)
	if err != nil {
		return nil, err
	}
	switch code {
	case 1:
		return v, nil
	case 2:
		return v, store.ErrSpent
	default:
		return nil, store.ErrNotFound
	}
}

// --- Grants ---

// CreateGrant implements store.Grants. The stored grant starts at Version 1.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant, ttl time.Duration) error {
	if err := backend.NonNegativeTTL("create grant", ttl); err != nil {
		return err
	}
	g.Version = 1
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("redisstore: create grant: encode: %w", err)
	}
	if err := s.indexGrant(ctx, "create grant", g, ttl); err != nil {
		return err
	}
	key := s.grantKey(g.ID)
	var run *redis.Cmd
	werr := s.waitWrite(ctx, "create grant", key, func(c redis.Cmdable) {
		run = runScript(ctx, c, s.scripts.createGrant, []string{key}, g.Version, b, ms(ttl))
	})
	n, err := run.Int64()
	if err != nil {
		return fail("create grant", err)
	}
	if werr != nil {
		return werr
	}
	if n == 0 {
		return store.ErrAlreadyExists
	}
	return nil
}

// GetGrant implements store.Grants.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	vals, err := s.c.HMGet(ctx, s.grantKey(id), "v", "d").Result()
	if err != nil {
		return store.Grant{}, fail("get grant", err)
	}
	return decodeGrant("get grant", vals)
}

// decodeGrant turns an HMGET of a grant's v and d fields into the grant;
// ErrNotFound when the hash does not exist.
func decodeGrant(op string, vals []any) (store.Grant, error) {
	if len(vals) != 2 || vals[0] == nil || vals[1] == nil {
		return store.Grant{}, store.ErrNotFound
	}
	vs, ok1 := vals[0].(string)
	d, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return store.Grant{}, errCorrupt(op)
	}
	version, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return store.Grant{}, errCorrupt(op)
	}
	var g store.Grant
	if err := json.Unmarshal([]byte(d), &g); err != nil {
		return store.Grant{}, errCorrupt(op)
	}
	g.Version = version // the hash field is authoritative: the CAS compares it
	return g, nil
}

// UpdateGrant implements store.Grants: read, apply fn to a copy, and
// compare-and-swap on the version in Lua, retrying lost races.
func (s *Store) UpdateGrant(ctx context.Context, id string, ttl time.Duration, fn func(g *store.Grant) error) (store.Grant, error) {
	return backend.UpdateGrant(ctx, id, ttl, fn, s.GetGrant, s.casGrant)
}

func (s *Store) casGrant(ctx context.Context, expect int64, next store.Grant, ttl time.Duration) (bool, error) {
	b, err := json.Marshal(next)
	if err != nil {
		return false, fmt.Errorf("redisstore: update grant: encode: %w", err)
	}
	if ttl > 0 {
		// The grant's life is about to grow: grow its index entries first.
		if err := s.indexGrant(ctx, "update grant", next, ttl); err != nil {
			return false, err
		}
	}
	key := s.grantKey(next.ID)
	var run *redis.Cmd
	werr := s.waitWrite(ctx, "update grant", key, func(c redis.Cmdable) {
		run = runScript(ctx, c, s.scripts.casGrant, []string{key}, expect, next.Version, b, ms(ttl))
	})
	n, err := run.Int64()
	if err != nil {
		return false, fail("update grant", err)
	}
	if werr != nil {
		return false, werr
	}
	switch n {
	case 1:
		return true, nil
	case 0:
		return false, nil
	default:
		return false, store.ErrNotFound
	}
}

// DeleteGrant implements store.Grants: the grant goes first, then its index
// entries (an entry left behind by a failure in between is pruned later).
func (s *Store) DeleteGrant(ctx context.Context, id string) error {
	g, err := s.GetGrant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		// Deleting must not depend on the record decoding.
		g = store.Grant{ID: id}
	}
	if err := s.del(ctx, "delete grant", s.grantKey(id)); err != nil {
		return err
	}
	if g.UserID != "" {
		if err := s.c.SRem(ctx, s.userIndexKey(g.UserID), id).Err(); err != nil {
			return fail("delete grant", err)
		}
	}
	if g.ClientID != "" {
		if err := s.c.SRem(ctx, s.clientIndexKey(g.ClientID), id).Err(); err != nil {
			return fail("delete grant", err)
		}
	}
	return nil
}

// indexGrant adds g to its user and client index sets and keeps each set
// alive at least ttl + indexSlack (ttl 0: as long as it has members).
func (s *Store) indexGrant(ctx context.Context, op string, g store.Grant, ttl time.Duration) error {
	keep := int64(0)
	if ttl > 0 {
		keep = ms(ttl + indexSlack)
	}
	for _, key := range []string{s.userIndexKey(g.UserID), s.clientIndexKey(g.ClientID)} {
		if err := s.scripts.indexAdd.Run(ctx, s.c, []string{key}, g.ID, keep).Err(); err != nil {
			return fail(op, err)
		}
	}
	return nil
}

// --- Grant index ---

// ListGrantsByUser implements store.GrantIndex.
func (s *Store) ListGrantsByUser(ctx context.Context, userID string) ([]store.Grant, error) {
	return s.listIndex(ctx, "list grants by user", s.userIndexKey(userID), func(g store.Grant) bool { return g.UserID == userID })
}

// ListGrantsByClient implements store.GrantIndex.
func (s *Store) ListGrantsByClient(ctx context.Context, clientID string) ([]store.Grant, error) {
	return s.listIndex(ctx, "list grants by client", s.clientIndexKey(clientID), func(g store.Grant) bool { return g.ClientID == clientID })
}

// listIndex reads the grants an index set names, in one pipeline (which a
// ClusterClient splits by slot), keeps those that still exist and belong to
// the set, and prunes the rest from it.
func (s *Store) listIndex(ctx context.Context, op, key string, belongs func(store.Grant) bool) ([]store.Grant, error) {
	ids, err := s.c.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fail(op, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.grantKey(id), "v", "d")
		}
		return nil
	}); err != nil {
		return nil, fail(op, err)
	}
	var out []store.Grant
	var stale []any
	for i, cmd := range cmds {
		g, err := decodeGrant(op, cmd.Val())
		switch {
		case errors.Is(err, store.ErrNotFound):
			stale = append(stale, ids[i])
		case err != nil:
			return nil, err
		case g.ID != ids[i] || !belongs(g):
			stale = append(stale, ids[i])
		default:
			out = append(out, g)
		}
	}
	if len(stale) > 0 {
		// Best effort: a failed prune only means the next listing tries again.
		_ = s.c.SRem(ctx, key, stale...).Err()
	}
	return out, nil
}

// ListGrantClients implements store.GrantIndex by scanning for client index
// sets: a set exists while it has members.
func (s *Store) ListGrantClients(ctx context.Context) ([]string, error) {
	keys, err := s.scan(ctx, "list grant clients", s.prefix+clientIndexPart)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(k, s.prefix+clientIndexPart), "}"))
	}
	return ids, nil
}

// ListClients implements store.GrantIndex by scanning for client records.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	const op = "list clients"
	keys, err := s.scan(ctx, op, s.prefix+clientPart)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	cmds := make([]*redis.StringCmd, len(keys))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail(op, err)
	}
	var out []store.Client
	for _, cmd := range cmds {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // expired since the scan
		}
		if err != nil {
			return nil, fail(op, err)
		}
		var c store.Client
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, errCorrupt(op)
		}
		out = append(out, c)
	}
	return out, nil
}

// scan returns every key starting with prefix, on each primary of a Cluster.
func (s *Store) scan(ctx context.Context, op, prefix string) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	pattern := globEscape(prefix) + "*"
	one := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 500).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	} else {
		err = one(ctx, s.c)
	}
	if err != nil {
		return nil, fail(op, err)
	}
	slices.Sort(keys) // a replica may be scanned twice during a failover
	return slices.Compact(keys), nil
}

// globEscape quotes the characters SCAN MATCH treats as a pattern, so a
// prefix is matched literally.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// --- Key sets ---

// GetOrCreateKeySet implements store.KeySets with SET NX then GET. The GET
// can only miss if the key vanished in between (a flush or a failover to a
// replica that never saw it); then the candidate is offered again.
func (s *Store) GetOrCreateKeySet(ctx context.Context, candidate []byte) ([]byte, error) {
	key := s.keySetKey()
	for range 3 {
		created, err := s.c.SetNX(ctx, key, candidate, 0).Result()
		if err != nil {
			return nil, fail("create key set", err)
		}
		if created {
			return append([]byte{}, candidate...), nil
		}
		b, err := s.c.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fail("get key set", err)
		}
		return b, nil
	}
	return nil, errors.New("redisstore: get key set: the key set keeps disappearing")
}

// SwapKeySet implements store.KeySets as a Lua compare-and-set; ErrNotFound
// when no key set exists.
func (s *Store) SwapKeySet(ctx context.Context, old, next []byte) ([]byte, bool, error) {
	res, err := s.scripts.swapKeySet.Run(ctx, s.c, []string{s.keySetKey()}, old, next).Result()
	if err != nil {
		return nil, false, fail("swap key set", err)
	}
	code, v, err := reply("swap key set", res)
	if err != nil {
		return nil, false, err
	}
	switch code {
	case 1:
		return v, true, nil
	case 0:
		return v, false, nil
	default:
		return nil, false, store.ErrNotFound
	}
}

// --- Cache ---

// GetCache implements store.Cache.
func (s *Store) GetCache(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.cacheKey(key)).Bytes()
	if err != nil {
		return nil, fail("get cache", err)
	}
	return b, nil
}

// SetCache implements store.Cache.
func (s *Store) SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := backend.PositiveTTL("set cache", ttl); err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.cacheKey(key), value, px(ttl)).Err(); err != nil {
		return fail("set cache", err)
	}
	return nil
}

// DeleteCache implements store.Cache.
func (s *Store) DeleteCache(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.cacheKey(key)).Err(); err != nil {
		return fail("delete cache", err)
	}
	return nil
}

// --- Locks ---

// TryLock implements store.Locker with SET NX PX and a random owner token;
// release deletes the key only while it still holds our token.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if err := backend.PositiveTTL("try lock", ttl); err != nil {
		return nil, false, err
	}
	key, token := s.lockKey(name), rand.Text()
	ok, err := s.c.SetNX(ctx, key, token, px(ttl)).Result()
	if err != nil {
		return nil, false, fail("try lock", err)
	}
	if !ok {
		return nil, false, nil
	}
	release := func(ctx context.Context) error {
		if err := s.scripts.releaseLock.Run(ctx, s.c, []string{key}, token).Err(); err != nil {
			return fail("release lock", err)
		}
		return nil
	}
	return release, true, nil
}

// --- Counters ---

// Hit implements store.Counters: INCR, with the window's expiry set by the
// first hit, in one script.
func (s *Store) Hit(ctx context.Context, name string, window time.Duration) (int64, time.Duration, error) {
	if err := backend.PositiveTTL("hit", window); err != nil {
		return 0, 0, err
	}
	res, err := s.scripts.hit.Run(ctx, s.c, []string{s.counterKey(name)}, ms(window)).Int64Slice()
	if err != nil {
		return 0, 0, fail("hit", err)
	}
	if len(res) != 2 {
		return 0, 0, errors.New("redisstore: hit: unexpected script reply")
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// --- Events ---

// AppendEvent implements store.Events: LPUSH, LTRIM to max and PEXPIRE in one
// MULTI on one key, so the list never holds more than max entries.
func (s *Store) AppendEvent(ctx context.Context, value []byte, max int, ttl time.Duration) error {
	if err := backend.PositiveTTL("append event", ttl); err != nil {
		return err
	}
	if max <= 0 {
		return errors.New("redisstore: append event: max must be positive")
	}
	key := s.eventsKey()
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, value)
		p.LTrim(ctx, key, 0, int64(max-1))
		p.PExpire(ctx, key, px(ttl))
		return nil
	})
	if err != nil {
		return fail("append event", err)
	}
	return nil
}

// RecentEvents implements store.Events.
func (s *Store) RecentEvents(ctx context.Context, n int) ([][]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	vals, err := s.c.LRange(ctx, s.eventsKey(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fail("recent events", err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
