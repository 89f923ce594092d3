// Package storetest owns the conformance suite for store.Store: the
// executable definition of the semantics documented in package store. Every
// backend runs the same suite (modelled on dex's storage/conformance), so
// the dev-mode memory store and production Redis cannot drift apart.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// The suite's notion of time. Backends on a real clock sleep for these, so
// they are short, but far enough apart that a slow machine (-race, CI) does
// not turn a "still alive" check into an "expired" one: every such check
// leaves at least 200ms of slack.
const (
	ttl   = 400 * time.Millisecond // lifetime of short-lived records
	short = 100 * time.Millisecond // an advance that stays well within ttl
	past  = 500 * time.Millisecond // an advance that outlives ttl from creation
	long  = time.Hour              // a lifetime the test never reaches

	concurrency = 50
)

// Run runs every conformance test as a parallel subtest.
//
// newStore returns a fresh, empty store for the subtest t (it should register
// its own cleanup). advance moves time forward by d for the store newStore
// returned for the same t: a fake clock for an in-memory store, time.Sleep
// for Redis. Because subtests run in parallel, advance must not move the
// clock of other subtests' stores.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, advance func(t *testing.T, d time.Duration)) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store, advance func(time.Duration))
	}{
		{"clients/create get put delete", testClientCRUD},
		{"clients/values are copied", testClientCopies},
		{"clients/ttl expiry", testClientExpiry},
		{"clients/touch extends expiry", testClientTouch},

		{"tickets/put peek consume", testTicketLifecycle},
		{"tickets/duplicate put", testTicketDuplicate},
		{"tickets/consume missing", testTicketConsumeMissing},
		{"tickets/spent marker", testTicketSpent},
		{"tickets/ttl expiry", testTicketExpiry},
		{"tickets/kinds are separate key spaces", testTicketKinds},
		{"tickets/values are copied", testTicketCopies},
		{"tickets/concurrent consumers with spent marker", func(t *testing.T, s store.Store, _ func(time.Duration)) {
			testTicketRace(t, s, ttl)
		}},
		{"tickets/concurrent consumers without spent marker", func(t *testing.T, s store.Store, _ func(time.Duration)) {
			testTicketRace(t, s, 0)
		}},

		{"grants/create get delete", testGrantCRUD},
		{"grants/ttl expiry", testGrantExpiry},
		{"grants/update increments version", testGrantUpdate},
		{"grants/update with ttl 0 keeps expiry", testGrantUpdateKeepsTTL},
		{"grants/update with ttl resets expiry", testGrantUpdateResetsTTL},
		{"grants/fn error aborts update", testGrantUpdateAbort},
		{"grants/fn may call the store", testGrantUpdateReentrant},
		{"grants/values are copied", testGrantCopies},
		{"grants/update retries after a concurrent change", testGrantUpdateRetries},
		{"grants/concurrent updates all land", testGrantConcurrentUpdates},
		{"grants/rotation race has one winner", testGrantRotationRace},

		{"events/bounded, newest first", testEvents},
		{"events/ttl expiry", testEventsExpiry},
		{"events/values are copied", testEventsCopies},

		{"index/list by user and by client", testIndexList},
		{"index/expired and deleted grants are not listed", testIndexExpiry},
		{"index/update with ttl keeps the grant listed", testIndexUpdateTTL},
		{"index/listed grants are copies", testIndexCopies},
		{"index/concurrent creates and deletes", testIndexRace},
		{"index/list clients", testListClients},

		{"keysets/get or create and swap", testKeySet},
		{"keysets/concurrent creators agree", testKeySetCreateRace},
		{"keysets/concurrent swaps have one winner", testKeySetSwapRace},

		{"cache/get set delete", testCache},
		{"cache/ttl expiry", testCacheExpiry},

		{"locks/exclusive under concurrency", testLockExclusive},
		{"locks/release lets another take it", testLockRelease},
		{"locks/stale release keeps new holder", testLockStaleRelease},
		{"locks/ttl expiry", testLockExpiry},

		{"counters/count and window", testCounter},

		{"ping", testPing},
		{"invalid durations are rejected", testInvalidDurations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			tc.run(t, s, func(d time.Duration) { advance(t, d) })
		})
	}
}

// --- helpers ---

func ctx(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func wantBytes(t *testing.T, got, want []byte, what string) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func wantEqual[T any](t *testing.T, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// race runs f(0..n-1) concurrently, releasing all goroutines at once to
// maximise contention, and waits for them.
func race(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

var (
	// Times with nanoseconds and in UTC, so a lossy encoding shows up.
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	t1 = t0.Add(time.Hour)
)

func sampleClient(id string) store.Client {
	return store.Client{
		ID:                      id,
		SecretHash:              []byte{1, 2, 3, 4},
		RegistrationTokenHash:   []byte{5, 6, 7, 8},
		Name:                    "Example Client",
		URI:                     "https://client.example",
		LogoURI:                 "https://client.example/logo.png",
		RedirectURIs:            []string{"https://client.example/cb", "http://127.0.0.1/cb"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "client_secret_basic",
		Scope:                   "openid email",
		ApplicationType:         "web",
		Metadata:                true,
		CreatedAt:               t0,
	}
}

func sampleGrant(id string) store.Grant {
	return store.Grant{
		ID:                id,
		UserID:            "user_1",
		ClientID:          "client_1",
		Scopes:            []string{"openid", "email"},
		Resource:          "https://mcp.example/mcp",
		CreatedAt:         t0,
		ExpiresAt:         t1,
		Upstream:          []byte("sealed upstream tokens"),
		UpstreamExpiresAt: t1,
		Refresh: store.RefreshChain{
			Current:                  []byte("hash-current"),
			Previous:                 []byte("hash-previous"),
			RotatedAt:                t0,
			CurrentSealedForPrevious: []byte("sealed-current"),
			Retired:                  [][]byte{[]byte("hash-r1"), []byte("hash-r2")},
			Generation:               3,
		},
		Active: true,
	}
}

// --- clients ---

func testClientCRUD(t *testing.T, s store.Store, _ func(time.Duration)) {
	_, err := s.GetClient(ctx(t), "c1")
	wantErr(t, err, store.ErrNotFound, "get missing client")

	c := sampleClient("c1")
	must(t, s.CreateClient(ctx(t), c, 0), "create client")
	other := sampleClient("c1")
	other.Name = "Impostor"
	wantErr(t, s.CreateClient(ctx(t), other, 0), store.ErrAlreadyExists, "create duplicate client")

	got, err := s.GetClient(ctx(t), "c1")
	must(t, err, "get client")
	wantEqual(t, got, c, "client after create (the duplicate must not overwrite)")

	c.Name, c.RedirectURIs = "Renamed", []string{"https://client.example/other"}
	must(t, s.PutClient(ctx(t), c, 0), "put existing client")
	got, err = s.GetClient(ctx(t), "c1")
	must(t, err, "get client")
	wantEqual(t, got, c, "client after put")

	c2 := sampleClient("c2")
	must(t, s.PutClient(ctx(t), c2, 0), "put new client")
	got, err = s.GetClient(ctx(t), "c2")
	must(t, err, "get client created by put")
	wantEqual(t, got, c2, "client created by put")

	must(t, s.DeleteClient(ctx(t), "c1"), "delete client")
	_, err = s.GetClient(ctx(t), "c1")
	wantErr(t, err, store.ErrNotFound, "get deleted client")
	must(t, s.DeleteClient(ctx(t), "c1"), "delete missing client")
	must(t, s.CreateClient(ctx(t), c, 0), "create client again after delete")

	if _, err := s.GetClient(ctx(t), "c2"); err != nil {
		t.Fatalf("deleting c1 affected c2: %v", err)
	}
}

func testClientCopies(t *testing.T, s store.Store, _ func(time.Duration)) {
	c := sampleClient("c1")
	want := store.CloneClient(c)
	must(t, s.CreateClient(ctx(t), c, 0), "create client")
	c.RedirectURIs[0], c.SecretHash[0], c.GrantTypes[0] = "https://evil.example", 0xff, "implicit"

	got, err := s.GetClient(ctx(t), "c1")
	must(t, err, "get client")
	wantEqual(t, got, want, "client after mutating the created value")
	got.RedirectURIs[0], got.SecretHash[0], got.ResponseTypes[0] = "https://evil.example", 0xff, "token"

	got, err = s.GetClient(ctx(t), "c1")
	must(t, err, "get client")
	wantEqual(t, got, want, "client after mutating a returned value")
}

func testClientExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.CreateClient(ctx(t), sampleClient("short"), ttl), "create client with ttl")
	must(t, s.CreateClient(ctx(t), sampleClient("forever"), 0), "create client without ttl")
	must(t, s.CreateClient(ctx(t), sampleClient("made-permanent"), ttl), "create client with ttl")
	must(t, s.PutClient(ctx(t), sampleClient("made-permanent"), 0), "put client without ttl")

	advance(short)
	_, err := s.GetClient(ctx(t), "short")
	must(t, err, "get client before expiry")

	advance(past)
	_, err = s.GetClient(ctx(t), "short")
	wantErr(t, err, store.ErrNotFound, "get expired client")
	wantErr(t, s.TouchClient(ctx(t), "short", ttl), store.ErrNotFound, "touch expired client")
	_, err = s.GetClient(ctx(t), "forever")
	must(t, err, "get client registered with ttl 0")
	_, err = s.GetClient(ctx(t), "made-permanent")
	must(t, err, "get client put with ttl 0 (put must drop the old expiry)")
	must(t, s.CreateClient(ctx(t), sampleClient("short"), ttl), "create client again after expiry")
}

func testClientTouch(t *testing.T, s store.Store, advance func(time.Duration)) {
	wantErr(t, s.TouchClient(ctx(t), "missing", ttl), store.ErrNotFound, "touch missing client")

	must(t, s.CreateClient(ctx(t), sampleClient("idle"), ttl), "create client")
	must(t, s.CreateClient(ctx(t), sampleClient("pinned"), ttl), "create client")
	advance(250 * time.Millisecond)
	must(t, s.TouchClient(ctx(t), "idle", 2*ttl), "touch client")
	must(t, s.TouchClient(ctx(t), "pinned", 0), "touch client with ttl 0")

	advance(300 * time.Millisecond) // 550ms: past the original expiry, within the new one
	_, err := s.GetClient(ctx(t), "idle")
	must(t, err, "get touched client after its original expiry")

	advance(600 * time.Millisecond) // 1150ms: past the new expiry (1050ms)
	_, err = s.GetClient(ctx(t), "idle")
	wantErr(t, err, store.ErrNotFound, "get touched client after the extended expiry")
	_, err = s.GetClient(ctx(t), "pinned")
	must(t, err, "get client touched with ttl 0")
}

// --- tickets ---

func testTicketLifecycle(t *testing.T, s store.Store, _ func(time.Duration)) {
	v := []byte("authorization request")
	must(t, s.PutTicket(ctx(t), store.KindTransaction, "t1", v, ttl), "put ticket")

	for i := range 2 { // peeking does not consume
		got, err := s.PeekTicket(ctx(t), store.KindTransaction, "t1")
		must(t, err, fmt.Sprintf("peek ticket #%d", i+1))
		wantBytes(t, got, v, "peeked value")
	}

	got, err := s.ConsumeTicket(ctx(t), store.KindTransaction, "t1", 0)
	must(t, err, "consume ticket")
	wantBytes(t, got, v, "consumed value")

	_, err = s.PeekTicket(ctx(t), store.KindTransaction, "t1")
	wantErr(t, err, store.ErrNotFound, "peek consumed ticket")
	got, err = s.ConsumeTicket(ctx(t), store.KindTransaction, "t1", 0)
	wantErr(t, err, store.ErrNotFound, "consume a ticket consumed without a spent marker")
	if got != nil {
		t.Fatalf("consume of a missing ticket returned %q, want nil", got)
	}
	must(t, s.PutTicket(ctx(t), store.KindTransaction, "t1", v, ttl), "put ticket again (no spent marker was kept)")
}

func testTicketDuplicate(t *testing.T, s store.Store, _ func(time.Duration)) {
	must(t, s.PutTicket(ctx(t), store.KindCode, "t1", []byte("first"), ttl), "put ticket")
	wantErr(t, s.PutTicket(ctx(t), store.KindCode, "t1", []byte("second"), ttl), store.ErrAlreadyExists, "put duplicate ticket")
	got, err := s.PeekTicket(ctx(t), store.KindCode, "t1")
	must(t, err, "peek ticket")
	wantBytes(t, got, []byte("first"), "ticket after duplicate put")
}

func testTicketConsumeMissing(t *testing.T, s store.Store, _ func(time.Duration)) {
	got, err := s.ConsumeTicket(ctx(t), store.KindCode, "never-issued", time.Minute)
	wantErr(t, err, store.ErrNotFound, "consume unknown ticket")
	if got != nil {
		t.Fatalf("consume of an unknown ticket returned %q, want nil", got)
	}
	_, err = s.PeekTicket(ctx(t), store.KindCode, "never-issued")
	wantErr(t, err, store.ErrNotFound, "peek unknown ticket")
	// Consuming an unknown ticket must not leave a spent marker behind.
	must(t, s.PutTicket(ctx(t), store.KindCode, "never-issued", []byte("v"), ttl), "put after consuming unknown")
}

func testTicketSpent(t *testing.T, s store.Store, advance func(time.Duration)) {
	v := []byte("code grant")
	must(t, s.PutTicket(ctx(t), store.KindCode, "c1", v, long), "put ticket")
	got, err := s.ConsumeTicket(ctx(t), store.KindCode, "c1", ttl)
	must(t, err, "consume ticket")
	wantBytes(t, got, v, "consumed value")

	for i := range 2 {
		got, err = s.ConsumeTicket(ctx(t), store.KindCode, "c1", ttl)
		wantErr(t, err, store.ErrSpent, fmt.Sprintf("consume spent ticket #%d", i+1))
		wantBytes(t, got, v, "value returned with ErrSpent")
	}
	_, err = s.PeekTicket(ctx(t), store.KindCode, "c1")
	wantErr(t, err, store.ErrNotFound, "peek spent ticket")
	wantErr(t, s.PutTicket(ctx(t), store.KindCode, "c1", []byte("replay"), ttl), store.ErrAlreadyExists, "put over a spent marker")

	advance(past)
	_, err = s.ConsumeTicket(ctx(t), store.KindCode, "c1", ttl)
	wantErr(t, err, store.ErrNotFound, "consume after the spent marker expired")
	must(t, s.PutTicket(ctx(t), store.KindCode, "c1", v, ttl), "put after the spent marker expired")
}

func testTicketExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	v := []byte("state")
	must(t, s.PutTicket(ctx(t), store.KindUpstreamState, "s1", v, ttl), "put ticket")
	advance(short)
	got, err := s.PeekTicket(ctx(t), store.KindUpstreamState, "s1")
	must(t, err, "peek before expiry")
	wantBytes(t, got, v, "peeked value")

	advance(past)
	_, err = s.PeekTicket(ctx(t), store.KindUpstreamState, "s1")
	wantErr(t, err, store.ErrNotFound, "peek expired ticket")
	_, err = s.ConsumeTicket(ctx(t), store.KindUpstreamState, "s1", ttl)
	wantErr(t, err, store.ErrNotFound, "consume expired ticket")
	must(t, s.PutTicket(ctx(t), store.KindUpstreamState, "s1", v, ttl), "put after expiry")
}

func testTicketKinds(t *testing.T, s store.Store, _ func(time.Duration)) {
	kinds := []store.Kind{store.KindTransaction, store.KindUpstreamState, store.KindCode}
	for _, k := range kinds {
		must(t, s.PutTicket(ctx(t), k, "same-id", []byte(k), ttl), "put "+string(k))
	}
	for _, k := range kinds {
		got, err := s.PeekTicket(ctx(t), k, "same-id")
		must(t, err, "peek "+string(k))
		wantBytes(t, got, []byte(k), "value of kind "+string(k))
	}
	got, err := s.ConsumeTicket(ctx(t), store.KindTransaction, "same-id", ttl)
	must(t, err, "consume txn")
	wantBytes(t, got, []byte(store.KindTransaction), "consumed txn")
	for _, k := range kinds[1:] {
		got, err := s.ConsumeTicket(ctx(t), k, "same-id", 0)
		must(t, err, "consume "+string(k)+" after another kind with the same id was spent")
		wantBytes(t, got, []byte(k), "value of kind "+string(k))
	}
}

func testTicketCopies(t *testing.T, s store.Store, _ func(time.Duration)) {
	v := []byte("value")
	must(t, s.PutTicket(ctx(t), store.KindCode, "t1", v, ttl), "put ticket")
	v[0] = 'X'
	got, err := s.PeekTicket(ctx(t), store.KindCode, "t1")
	must(t, err, "peek ticket")
	wantBytes(t, got, []byte("value"), "ticket after mutating the stored slice")
	got[0] = 'Y'
	got, err = s.ConsumeTicket(ctx(t), store.KindCode, "t1", ttl)
	must(t, err, "consume ticket")
	wantBytes(t, got, []byte("value"), "ticket after mutating a peeked slice")
	got[0] = 'Z'
	got, err = s.ConsumeTicket(ctx(t), store.KindCode, "t1", ttl)
	wantErr(t, err, store.ErrSpent, "consume spent ticket")
	wantBytes(t, got, []byte("value"), "spent value after mutating a consumed slice")
}

// testTicketRace is the property authorization codes rely on: of any number
// of concurrent redemptions exactly one gets the value.
func testTicketRace(t *testing.T, s store.Store, keepSpent time.Duration) {
	v := []byte("one-time code")
	must(t, s.PutTicket(ctx(t), store.KindCode, "hot", v, long), "put ticket")
	vals := make([][]byte, concurrency)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		vals[i], errs[i] = s.ConsumeTicket(ctx(t), store.KindCode, "hot", keepSpent)
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			wantBytes(t, vals[i], v, "winner's value")
		case errors.Is(err, store.ErrSpent):
			if keepSpent == 0 {
				t.Fatalf("consumer %d got ErrSpent although no spent marker was requested", i)
			}
			wantBytes(t, vals[i], v, "value returned with ErrSpent")
		case errors.Is(err, store.ErrNotFound):
			if keepSpent > 0 {
				// The marker is written in the same atomic step as the delete,
				// so a loser can never see "gone" without "spent".
				t.Fatalf("consumer %d got ErrNotFound although a spent marker is kept", i)
			}
		default:
			t.Fatalf("consumer %d: unexpected error %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent consumers got the ticket, want exactly 1", winners, concurrency)
	}
}

// --- grants ---

func testGrantCRUD(t *testing.T, s store.Store, _ func(time.Duration)) {
	_, err := s.GetGrant(ctx(t), "g1")
	wantErr(t, err, store.ErrNotFound, "get missing grant")
	called := false
	_, err = s.UpdateGrant(ctx(t), "g1", 0, func(*store.Grant) error { called = true; return nil })
	wantErr(t, err, store.ErrNotFound, "update missing grant")
	if called {
		t.Fatal("UpdateGrant called fn for a missing grant")
	}

	g := sampleGrant("g1")
	g.Version = 42 // the store owns Version; callers' values are ignored
	must(t, s.CreateGrant(ctx(t), g, 0), "create grant")
	wantErr(t, s.CreateGrant(ctx(t), sampleGrant("g1"), 0), store.ErrAlreadyExists, "create duplicate grant")

	got, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	want := sampleGrant("g1")
	want.Version = 1
	wantEqual(t, got, want, "grant after create")

	must(t, s.DeleteGrant(ctx(t), "g1"), "delete grant")
	_, err = s.GetGrant(ctx(t), "g1")
	wantErr(t, err, store.ErrNotFound, "get deleted grant")
	must(t, s.DeleteGrant(ctx(t), "g1"), "delete missing grant")
}

func testGrantExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), sampleGrant("short"), ttl), "create grant with ttl")
	must(t, s.CreateGrant(ctx(t), sampleGrant("forever"), 0), "create grant without ttl")
	advance(short)
	_, err := s.GetGrant(ctx(t), "short")
	must(t, err, "get grant before expiry")

	advance(past)
	_, err = s.GetGrant(ctx(t), "short")
	wantErr(t, err, store.ErrNotFound, "get expired grant")
	_, err = s.UpdateGrant(ctx(t), "short", 0, func(*store.Grant) error { return nil })
	wantErr(t, err, store.ErrNotFound, "update expired grant")
	_, err = s.GetGrant(ctx(t), "forever")
	must(t, err, "get grant created with ttl 0")
	must(t, s.CreateGrant(ctx(t), sampleGrant("short"), ttl), "create grant again after expiry")
}

func testGrantUpdate(t *testing.T, s store.Store, _ func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), sampleGrant("g1"), 0), "create grant")
	for wantVersion := int64(2); wantVersion <= 3; wantVersion++ {
		updated, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
			g.Scopes = append(g.Scopes, fmt.Sprintf("scope%d", wantVersion))
			g.Active = !g.Active
			return nil
		})
		must(t, err, "update grant")
		if updated.Version != wantVersion {
			t.Fatalf("version after update = %d, want %d", updated.Version, wantVersion)
		}
		got, err := s.GetGrant(ctx(t), "g1")
		must(t, err, "get grant")
		wantEqual(t, got, updated, "stored grant vs the one UpdateGrant returned")
	}

	// fn cannot move the grant or forge its version.
	updated, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
		g.ID, g.Version = "elsewhere", 100
		return nil
	})
	must(t, err, "update grant")
	if updated.ID != "g1" || updated.Version != 4 {
		t.Fatalf("after fn changed ID and Version: ID %q Version %d, want g1 and 4", updated.ID, updated.Version)
	}
	_, err = s.GetGrant(ctx(t), "elsewhere")
	wantErr(t, err, store.ErrNotFound, "get grant under the id fn tried to set")
}

func testGrantUpdateKeepsTTL(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), sampleGrant("g1"), ttl), "create grant")
	must(t, s.CreateGrant(ctx(t), sampleGrant("forever"), 0), "create grant")
	advance(short)
	_, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error { g.Active = false; return nil })
	must(t, err, "update grant with ttl 0")
	_, err = s.UpdateGrant(ctx(t), "forever", 0, func(g *store.Grant) error { g.Active = false; return nil })
	must(t, err, "update grant with ttl 0")
	advance(ttl) // 500ms: past the original expiry
	_, err = s.GetGrant(ctx(t), "g1")
	wantErr(t, err, store.ErrNotFound, "get grant after its original expiry (ttl 0 must keep it)")
	_, err = s.GetGrant(ctx(t), "forever")
	must(t, err, "get grant without expiry after an update with ttl 0")
}

func testGrantUpdateResetsTTL(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), sampleGrant("g1"), ttl), "create grant")
	advance(250 * time.Millisecond)
	_, err := s.UpdateGrant(ctx(t), "g1", 2*ttl, func(g *store.Grant) error { g.Refresh.Generation++; return nil })
	must(t, err, "update grant with ttl")
	advance(300 * time.Millisecond) // 550ms: past the original expiry, within the new one
	_, err = s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant after its original expiry")
	advance(600 * time.Millisecond) // 1150ms: past the new expiry (1050ms)
	_, err = s.GetGrant(ctx(t), "g1")
	wantErr(t, err, store.ErrNotFound, "get grant after the reset expiry")
}

func testGrantUpdateAbort(t *testing.T, s store.Store, _ func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), sampleGrant("g1"), 0), "create grant")
	before, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")

	errBoom := errors.New("boom")
	_, err = s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
		// Mutate in place, including shared backing arrays, before failing.
		g.Scopes[0] = "admin"
		g.Upstream[0] ^= 0xff
		g.Refresh.Retired[0][0] ^= 0xff
		g.Active = false
		return errBoom
	})
	if err != errBoom { // "returned as is": the identical value, not merely errors.Is
		t.Fatalf("UpdateGrant error = %v, want fn's error returned as is", err)
	}
	after, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	wantEqual(t, after, before, "grant after an aborted update")
}

func testGrantUpdateReentrant(t *testing.T, s store.Store, _ func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), sampleGrant("g1"), 0), "create grant")
	must(t, s.CreateClient(ctx(t), sampleClient("client_1"), 0), "create client")
	// A backend that runs fn under its own lock would deadlock here.
	_, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
		if _, err := s.GetClient(ctx(t), g.ClientID); err != nil {
			return err
		}
		if _, err := s.GetGrant(ctx(t), g.ID); err != nil {
			return err
		}
		g.Active = false
		return nil
	})
	must(t, err, "update grant whose fn reads the store")
}

func testGrantCopies(t *testing.T, s store.Store, _ func(time.Duration)) {
	g := sampleGrant("g1")
	must(t, s.CreateGrant(ctx(t), g, 0), "create grant")
	want := sampleGrant("g1")
	want.Version = 1
	scribble := func(g *store.Grant) {
		g.Scopes[0] = "admin"
		g.Upstream[0] ^= 0xff
		g.Refresh.Current[0] ^= 0xff
		g.Refresh.Previous[0] ^= 0xff
		g.Refresh.CurrentSealedForPrevious[0] ^= 0xff
		g.Refresh.Retired[0][0] ^= 0xff
	}
	scribble(&g)
	got, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	wantEqual(t, got, want, "grant after mutating the created value")

	scribble(&got)
	got, err = s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	wantEqual(t, got, want, "grant after mutating a returned value")

	var kept *store.Grant
	updated, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error { kept = g; return nil })
	must(t, err, "update grant")
	want.Version = 2
	scribble(&updated)
	scribble(kept)
	got, err = s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	wantEqual(t, got, want, "grant after mutating UpdateGrant's result and fn's argument")
}

// testGrantUpdateRetries provokes a lost race deterministically: while the
// outer update's fn runs, another update commits, so the outer compare-and-
// swap must fail and fn must run again on the newer grant.
func testGrantUpdateRetries(t *testing.T, s store.Store, _ func(time.Duration)) {
	g := sampleGrant("g1")
	g.Scopes = nil
	must(t, s.CreateGrant(ctx(t), g, 0), "create grant")
	calls := 0
	updated, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
		calls++
		if calls == 1 {
			_, err := s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
				g.Scopes = append(g.Scopes, "inner")
				return nil
			})
			if err != nil {
				return fmt.Errorf("inner update: %w", err)
			}
		}
		g.Scopes = append(g.Scopes, "outer")
		return nil
	})
	must(t, err, "outer update")
	if calls != 2 {
		t.Fatalf("fn ran %d times, want 2 (once more after losing the race)", calls)
	}
	wantEqual(t, updated.Scopes, []string{"inner", "outer"}, "scopes after both updates")
	if updated.Version != 3 {
		t.Fatalf("version = %d, want 3", updated.Version)
	}
	got, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	wantEqual(t, got, updated, "stored grant vs the one UpdateGrant returned")
}

// testGrantConcurrentUpdates: optimistic updates from many writers must never
// lose one (the classic read-modify-write race).
func testGrantConcurrentUpdates(t *testing.T, s store.Store, _ func(time.Duration)) {
	g := sampleGrant("g1")
	g.Scopes, g.Refresh.Generation = nil, 0
	must(t, s.CreateGrant(ctx(t), g, 0), "create grant")
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		_, errs[i] = s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
			g.Scopes = append(g.Scopes, fmt.Sprintf("w%02d", i))
			g.Refresh.Generation++
			return nil
		})
	})
	for i, err := range errs {
		must(t, err, fmt.Sprintf("concurrent update %d", i))
	}
	got, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	if got.Refresh.Generation != concurrency {
		t.Errorf("counter = %d, want %d (lost updates)", got.Refresh.Generation, concurrency)
	}
	if got.Version != concurrency+1 {
		t.Errorf("version = %d, want %d", got.Version, concurrency+1)
	}
	scopes := slices.Sorted(slices.Values(got.Scopes))
	if len(slices.Compact(scopes)) != concurrency {
		t.Errorf("%d distinct appended values, want %d: %v", len(slices.Compact(scopes)), concurrency, got.Scopes)
	}
}

// testGrantRotationRace is refresh-token rotation: concurrent refreshes
// presenting the same token must produce exactly one successor.
func testGrantRotationRace(t *testing.T, s store.Store, _ func(time.Duration)) {
	h0 := []byte("hash-of-refresh-token-0")
	g := sampleGrant("g1")
	g.Refresh = store.RefreshChain{Current: h0}
	must(t, s.CreateGrant(ctx(t), g, 0), "create grant")

	errLost := errors.New("lost the rotation race")
	results := make([]store.Grant, concurrency)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		own := fmt.Appendf(nil, "hash-of-refresh-token-from-%02d", i)
		results[i], errs[i] = s.UpdateGrant(ctx(t), "g1", 0, func(g *store.Grant) error {
			if !bytes.Equal(g.Refresh.Current, h0) {
				return errLost
			}
			g.Refresh.Previous, g.Refresh.Current = g.Refresh.Current, own
			g.Refresh.Generation++
			return nil
		})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("both %d and %d rotated the same token", winner, i)
			}
			winner = i
		case errors.Is(err, errLost):
		default:
			t.Fatalf("rotation %d: unexpected error %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation succeeded")
	}
	got, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	wantBytes(t, got.Refresh.Current, fmt.Appendf(nil, "hash-of-refresh-token-from-%02d", winner), "stored current token")
	wantBytes(t, got.Refresh.Previous, h0, "stored previous token")
	if got.Refresh.Generation != 1 {
		t.Fatalf("generation = %d, want 1", got.Refresh.Generation)
	}
	wantEqual(t, got, results[winner], "stored grant vs the winner's result")
}

// --- grant index ---

func indexedGrant(id, user, client string) store.Grant {
	g := sampleGrant(id)
	g.UserID, g.ClientID = user, client
	return g
}

// grantIDs lists the ids of grants, sorted, so listings compare as sets.
func grantIDs(gs []store.Grant) []string {
	ids := []string{}
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	slices.Sort(ids)
	return ids
}

func wantListed(t *testing.T, s store.Store, user, client string, wantUser, wantClient []string) {
	t.Helper()
	if user != "" {
		gs, err := s.ListGrantsByUser(ctx(t), user)
		must(t, err, "list grants by user")
		wantEqual(t, grantIDs(gs), wantUser, "grants of user "+user)
	}
	if client != "" {
		gs, err := s.ListGrantsByClient(ctx(t), client)
		must(t, err, "list grants by client")
		wantEqual(t, grantIDs(gs), wantClient, "grants of client "+client)
	}
}

func testIndexList(t *testing.T, s store.Store, _ func(time.Duration)) {
	wantListed(t, s, "u1", "c1", []string{}, []string{})
	cimd := "https://app.example/{odd}/client.json" // braces must not confuse key tags
	must(t, s.CreateGrant(ctx(t), indexedGrant("g1", "u1", "c1"), long), "create g1")
	must(t, s.CreateGrant(ctx(t), indexedGrant("g2", "u1", cimd), long), "create g2")
	must(t, s.CreateGrant(ctx(t), indexedGrant("g3", "u2", "c1"), 0), "create g3")
	wantErr(t, s.CreateGrant(ctx(t), indexedGrant("g3", "u3", "c3"), 0), store.ErrAlreadyExists, "create duplicate g3")

	wantListed(t, s, "u1", "c1", []string{"g1", "g2"}, []string{"g1", "g3"})
	wantListed(t, s, "u2", cimd, []string{"g3"}, []string{"g2"})
	wantListed(t, s, "u3", "c3", []string{}, []string{}) // the refused duplicate left nothing visible

	gs, err := s.ListGrantsByUser(ctx(t), "u2")
	must(t, err, "list grants by user")
	want := indexedGrant("g3", "u2", "c1")
	want.Version = 1
	wantEqual(t, gs, []store.Grant{want}, "listed grant")

	clients, err := s.ListGrantClients(ctx(t))
	must(t, err, "list grant clients")
	slices.Sort(clients)
	wantEqual(t, clients, []string{"c1", cimd}, "clients holding grants")

	must(t, s.DeleteGrant(ctx(t), "g1"), "delete g1")
	wantListed(t, s, "u1", "c1", []string{"g2"}, []string{"g3"})
	must(t, s.DeleteGrant(ctx(t), "g2"), "delete g2")
	wantListed(t, s, "u1", cimd, []string{}, []string{})
	clients, err = s.ListGrantClients(ctx(t))
	must(t, err, "list grant clients")
	wantEqual(t, clients, []string{"c1"}, "clients holding grants after deletes")
}

func testIndexExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), indexedGrant("short", "u1", "c1"), ttl), "create short")
	must(t, s.CreateGrant(ctx(t), indexedGrant("long", "u1", "c1"), long), "create long")
	advance(short)
	wantListed(t, s, "u1", "c1", []string{"long", "short"}, []string{"long", "short"})
	advance(past)
	wantListed(t, s, "u1", "c1", []string{"long"}, []string{"long"})
	// A new grant under an expired grant's id belongs to its new owners only.
	must(t, s.CreateGrant(ctx(t), indexedGrant("short", "u2", "c2"), long), "create short again")
	wantListed(t, s, "u1", "c1", []string{"long"}, []string{"long"})
	wantListed(t, s, "u2", "c2", []string{"short"}, []string{"short"})
}

func testIndexUpdateTTL(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), indexedGrant("g1", "u1", "c1"), ttl), "create grant")
	_, err := s.UpdateGrant(ctx(t), "g1", long, func(g *store.Grant) error { g.Active = true; return nil })
	must(t, err, "update grant with a longer ttl")
	advance(past)
	wantListed(t, s, "u1", "c1", []string{"g1"}, []string{"g1"})
	gs, err := s.ListGrantsByUser(ctx(t), "u1")
	must(t, err, "list grants by user")
	if len(gs) != 1 || !gs[0].Active || gs[0].Version != 2 {
		t.Fatalf("listed grant = %+v, want the updated one", gs)
	}
}

func testIndexCopies(t *testing.T, s store.Store, _ func(time.Duration)) {
	must(t, s.CreateGrant(ctx(t), indexedGrant("g1", "u1", "c1"), long), "create grant")
	gs, err := s.ListGrantsByClient(ctx(t), "c1")
	must(t, err, "list grants by client")
	gs[0].Scopes[0] = "mutated"
	gs[0].Upstream[0] = 'X'
	got, err := s.GetGrant(ctx(t), "g1")
	must(t, err, "get grant")
	want := indexedGrant("g1", "u1", "c1")
	want.Version = 1
	wantEqual(t, got, want, "grant after mutating a listed copy")
}

func testIndexRace(t *testing.T, s store.Store, _ func(time.Duration)) {
	id := func(i int) string { return fmt.Sprintf("g%02d", i) }
	race(concurrency, func(i int) {
		if err := s.CreateGrant(ctx(t), indexedGrant(id(i), "u1", fmt.Sprintf("c%d", i%2)), long); err != nil {
			t.Errorf("create %s: %v", id(i), err)
		}
	})
	var all, kept []string
	for i := range concurrency {
		all = append(all, id(i))
		if i%3 != 0 {
			kept = append(kept, id(i))
		}
	}
	wantListed(t, s, "u1", "", all, nil)
	race(concurrency, func(i int) {
		if i%3 == 0 {
			if err := s.DeleteGrant(ctx(t), id(i)); err != nil {
				t.Errorf("delete %s: %v", id(i), err)
			}
		}
	})
	wantListed(t, s, "u1", "", kept, nil)
	c0, err := s.ListGrantsByClient(ctx(t), "c0")
	must(t, err, "list grants by client")
	c1, err := s.ListGrantsByClient(ctx(t), "c1")
	must(t, err, "list grants by client")
	wantEqual(t, grantIDs(append(c0, c1...)), kept, "grants of both clients")
}

func testListClients(t *testing.T, s store.Store, advance func(time.Duration)) {
	clients, err := s.ListClients(ctx(t))
	must(t, err, "list clients")
	wantEqual(t, len(clients), 0, "clients in an empty store")
	must(t, s.CreateClient(ctx(t), sampleClient("c1"), 0), "create c1")
	must(t, s.PutClient(ctx(t), sampleClient("https://app.example/client.json"), long), "put cimd")
	must(t, s.CreateClient(ctx(t), sampleClient("short"), ttl), "create short")
	must(t, s.CreateClient(ctx(t), sampleClient("gone"), 0), "create gone")
	must(t, s.DeleteClient(ctx(t), "gone"), "delete gone")
	advance(past)
	clients, err = s.ListClients(ctx(t))
	must(t, err, "list clients")
	slices.SortFunc(clients, func(a, b store.Client) int { return strings.Compare(a.ID, b.ID) })
	wantEqual(t, clients, []store.Client{sampleClient("c1"), sampleClient("https://app.example/client.json")}, "listed clients")
}

// --- key sets ---

func testKeySet(t *testing.T, s store.Store, _ func(time.Duration)) {
	a, b, c := []byte("key set A"), []byte("key set B"), []byte("key set C")
	_, _, err := s.SwapKeySet(ctx(t), a, b)
	wantErr(t, err, store.ErrNotFound, "swap without a key set")

	got, err := s.GetOrCreateKeySet(ctx(t), a)
	must(t, err, "create key set")
	wantBytes(t, got, a, "created key set")
	got[0] = 'X' // must not alias the stored value
	got, err = s.GetOrCreateKeySet(ctx(t), b)
	must(t, err, "get key set")
	wantBytes(t, got, a, "key set after a second candidate")

	got, swapped, err := s.SwapKeySet(ctx(t), b, c)
	must(t, err, "swap with a stale old value")
	if swapped {
		t.Fatal("swap succeeded although old did not match")
	}
	wantBytes(t, got, a, "key set after a failed swap")

	got, swapped, err = s.SwapKeySet(ctx(t), a, c)
	must(t, err, "swap")
	if !swapped {
		t.Fatal("swap failed although old matched")
	}
	wantBytes(t, got, c, "value returned by a successful swap")
	got, err = s.GetOrCreateKeySet(ctx(t), b)
	must(t, err, "get key set")
	wantBytes(t, got, c, "key set after swap")
}

func testKeySetCreateRace(t *testing.T, s store.Store, _ func(time.Duration)) {
	const n = 20
	got := make([][]byte, n)
	errs := make([]error, n)
	race(n, func(i int) {
		got[i], errs[i] = s.GetOrCreateKeySet(ctx(t), fmt.Appendf(nil, "candidate %02d", i))
	})
	for i := range n {
		must(t, errs[i], fmt.Sprintf("replica %d: get or create key set", i))
		wantBytes(t, got[i], got[0], fmt.Sprintf("replica %d's key set vs replica 0's", i))
	}
	if !bytes.HasPrefix(got[0], []byte("candidate ")) {
		t.Fatalf("stored key set %q is none of the candidates", got[0])
	}
	stored, err := s.GetOrCreateKeySet(ctx(t), []byte("late"))
	must(t, err, "get key set")
	wantBytes(t, stored, got[0], "key set after the race")
}

func testKeySetSwapRace(t *testing.T, s store.Store, _ func(time.Duration)) {
	const n = 20
	old := []byte("old key set")
	_, err := s.GetOrCreateKeySet(ctx(t), old)
	must(t, err, "create key set")
	swapped := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) {
		_, swapped[i], errs[i] = s.SwapKeySet(ctx(t), old, fmt.Appendf(nil, "next %02d", i))
	})
	winner := -1
	for i := range n {
		must(t, errs[i], fmt.Sprintf("swap %d", i))
		if swapped[i] {
			if winner >= 0 {
				t.Fatalf("both %d and %d swapped the key set", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no swap succeeded")
	}
	stored, err := s.GetOrCreateKeySet(ctx(t), nil)
	must(t, err, "get key set")
	wantBytes(t, stored, fmt.Appendf(nil, "next %02d", winner), "key set after the swap race")
}

// --- cache ---

func testCache(t *testing.T, s store.Store, _ func(time.Duration)) {
	_, err := s.GetCache(ctx(t), "k")
	wantErr(t, err, store.ErrNotFound, "get missing cache entry")

	v := []byte("introspection result")
	must(t, s.SetCache(ctx(t), "k", v, long), "set cache")
	v[0] = 'X'
	got, err := s.GetCache(ctx(t), "k")
	must(t, err, "get cache")
	wantBytes(t, got, []byte("introspection result"), "cached value (after mutating the set slice)")
	got[0] = 'Y'

	must(t, s.SetCache(ctx(t), "k", []byte("newer"), long), "overwrite cache")
	got, err = s.GetCache(ctx(t), "k")
	must(t, err, "get cache")
	wantBytes(t, got, []byte("newer"), "overwritten value")

	must(t, s.DeleteCache(ctx(t), "k"), "delete cache")
	_, err = s.GetCache(ctx(t), "k")
	wantErr(t, err, store.ErrNotFound, "get deleted cache entry")
	must(t, s.DeleteCache(ctx(t), "k"), "delete missing cache entry")
}

func testCacheExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.SetCache(ctx(t), "k", []byte("v"), ttl), "set cache")
	advance(short)
	_, err := s.GetCache(ctx(t), "k")
	must(t, err, "get cache before expiry")
	advance(past)
	_, err = s.GetCache(ctx(t), "k")
	wantErr(t, err, store.ErrNotFound, "get expired cache entry")
}

// --- locks ---

func testLockExclusive(t *testing.T, s store.Store, _ func(time.Duration)) {
	oks := make([]bool, concurrency)
	errs := make([]error, concurrency)
	race(concurrency, func(i int) {
		_, oks[i], errs[i] = s.TryLock(ctx(t), "refresh:g1", long)
	})
	holders := 0
	for i := range concurrency {
		must(t, errs[i], fmt.Sprintf("TryLock %d", i))
		if oks[i] {
			holders++
		}
	}
	if holders != 1 {
		t.Fatalf("%d of %d concurrent TryLock calls got the lease, want exactly 1", holders, concurrency)
	}
}

func tryLock(t *testing.T, s store.Store, name string, d time.Duration, want bool, what string) func(context.Context) error {
	t.Helper()
	release, ok, err := s.TryLock(ctx(t), name, d)
	must(t, err, what)
	if ok != want {
		t.Fatalf("%s: ok = %v, want %v", what, ok, want)
	}
	if ok && release == nil {
		t.Fatalf("%s: nil release func", what)
	}
	return release
}

func testLockRelease(t *testing.T, s store.Store, _ func(time.Duration)) {
	releaseA := tryLock(t, s, "job", long, true, "A takes the lease")
	tryLock(t, s, "job", long, false, "B while A holds it")
	tryLock(t, s, "other-job", long, true, "a different lease is independent")

	must(t, releaseA(ctx(t)), "A releases")
	releaseB := tryLock(t, s, "job", long, true, "B after A released")
	must(t, releaseA(ctx(t)), "A releases again")
	tryLock(t, s, "job", long, false, "C after A released twice (B still holds it)")
	must(t, releaseB(ctx(t)), "B releases")
	tryLock(t, s, "job", long, true, "C after B released")
}

func testLockStaleRelease(t *testing.T, s store.Store, advance func(time.Duration)) {
	releaseA := tryLock(t, s, "job", ttl, true, "A takes the lease")
	advance(past)
	tryLock(t, s, "job", long, true, "B after A's lease expired")
	must(t, releaseA(ctx(t)), "A releases its expired lease")
	tryLock(t, s, "job", long, false, "C after A's stale release (B must still hold it)")
}

func testLockExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	tryLock(t, s, "job", ttl, true, "A takes the lease")
	advance(short)
	tryLock(t, s, "job", ttl, false, "B before A's lease expired")
	advance(past)
	tryLock(t, s, "job", ttl, true, "B after A's lease expired")
}

// --- counters ---

func testCounter(t *testing.T, s store.Store, advance func(time.Duration)) {
	hit := func(name string, want int64) time.Duration {
		t.Helper()
		n, resetIn, err := s.Hit(ctx(t), name, ttl)
		must(t, err, "hit "+name)
		if n != want {
			t.Fatalf("hit %s: count = %d, want %d", name, n, want)
		}
		if resetIn <= 0 || resetIn > ttl {
			t.Fatalf("hit %s: resetIn = %v, want within (0, %v]", name, resetIn, ttl)
		}
		return resetIn
	}
	for i := range int64(3) {
		hit("ip:1", i+1)
	}
	hit("ip:2", 1)
	advance(short)
	if r := hit("ip:1", 4); r > ttl-short {
		t.Fatalf("resetIn = %v after %v of a %v window: the window restarted", r, short, ttl)
	}
	advance(past)
	hit("ip:1", 1)
	hit("ip:1", 2)
}

// --- misc ---

func testPing(t *testing.T, s store.Store, _ func(time.Duration)) {
	must(t, s.Ping(ctx(t)), "ping")
}

// testInvalidDurations: records that must expire cannot be stored forever by
// accident, and a negative ttl is a bug, not "no expiry".
func testInvalidDurations(t *testing.T, s store.Store, _ func(time.Duration)) {
	checks := []struct {
		name string
		call func() error
	}{
		{"put ticket with ttl 0", func() error { return s.PutTicket(ctx(t), store.KindCode, "t", []byte("v"), 0) }},
		{"set cache with ttl 0", func() error { return s.SetCache(ctx(t), "k", []byte("v"), 0) }},
		{"create client with negative ttl", func() error { return s.CreateClient(ctx(t), sampleClient("c"), -time.Second) }},
		{"put client with negative ttl", func() error { return s.PutClient(ctx(t), sampleClient("c"), -time.Second) }},
		{"touch client with negative ttl", func() error { return s.TouchClient(ctx(t), "c", -time.Second) }},
		{"create grant with negative ttl", func() error { return s.CreateGrant(ctx(t), sampleGrant("g"), -time.Second) }},
		{"lock with ttl 0", func() error { _, _, err := s.TryLock(ctx(t), "l", 0); return err }},
		{"hit with window 0", func() error { _, _, err := s.Hit(ctx(t), "h", 0); return err }},
		{"append event with ttl 0", func() error { return s.AppendEvent(ctx(t), []byte("e"), 10, 0) }},
		{"append event with max 0", func() error { return s.AppendEvent(ctx(t), []byte("e"), 0, ttl) }},
	}
	for _, c := range checks {
		if err := c.call(); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	_, err := s.PeekTicket(ctx(t), store.KindCode, "t")
	wantErr(t, err, store.ErrNotFound, "peek a ticket rejected for its ttl")
	_, err = s.GetClient(ctx(t), "c")
	wantErr(t, err, store.ErrNotFound, "get a client rejected for its ttl")
	_, err = s.GetGrant(ctx(t), "g")
	wantErr(t, err, store.ErrNotFound, "get a grant rejected for its ttl")
	tryLock(t, s, "l", ttl, true, "take a lease after a rejected TryLock")
	evs, err := s.RecentEvents(ctx(t), 10)
	must(t, err, "recent events after rejected appends")
	wantEqual(t, len(evs), 0, "events kept by rejected appends")
}

func eventStrings(t *testing.T, s store.Store, n int) []string {
	t.Helper()
	evs, err := s.RecentEvents(ctx(t), n)
	must(t, err, "recent events")
	out := []string{}
	for _, e := range evs {
		out = append(out, string(e))
	}
	return out
}

func testEvents(t *testing.T, s store.Store, _ func(time.Duration)) {
	wantEqual(t, eventStrings(t, s, 10), []string{}, "events of an empty log")
	for i := range 5 {
		must(t, s.AppendEvent(ctx(t), []byte(fmt.Sprintf("e%d", i)), 3, long), "append event")
	}
	wantEqual(t, eventStrings(t, s, 10), []string{"e4", "e3", "e2"}, "a log capped at 3 after 5 appends")
	wantEqual(t, eventStrings(t, s, 2), []string{"e4", "e3"}, "the 2 most recent events")
	wantEqual(t, eventStrings(t, s, 0), []string{}, "0 events asked for")
	// A larger cap later keeps what is there and grows.
	must(t, s.AppendEvent(ctx(t), []byte("e5"), 10, long), "append event")
	wantEqual(t, eventStrings(t, s, 10), []string{"e5", "e4", "e3", "e2"}, "the log after raising the cap")
}

func testEventsExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	must(t, s.AppendEvent(ctx(t), []byte("old"), 10, ttl), "append event")
	advance(ttl - short)
	// Each append extends the whole log's life: "old" outlives its own ttl.
	must(t, s.AppendEvent(ctx(t), []byte("new"), 10, ttl), "append event")
	advance(2 * short)
	wantEqual(t, eventStrings(t, s, 10), []string{"new", "old"}, "events within ttl of the last append")
	advance(past)
	wantEqual(t, eventStrings(t, s, 10), []string{}, "events after ttl of the last append")
}

func testEventsCopies(t *testing.T, s store.Store, _ func(time.Duration)) {
	v := []byte("event")
	must(t, s.AppendEvent(ctx(t), v, 10, long), "append event")
	v[0] = 'X'
	evs, err := s.RecentEvents(ctx(t), 1)
	must(t, err, "recent events")
	evs[0][1] = 'Y'
	wantEqual(t, eventStrings(t, s, 1), []string{"event"}, "a stored event after changing the caller's copies")
}
