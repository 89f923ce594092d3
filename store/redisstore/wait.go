package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Durability on failover. Redis replicates asynchronously: a write the
// primary acknowledged may not have reached the replica that a Sentinel or
// Cluster failover promotes, and is then lost. With Options.WaitReplicas > 0
// the writes that must survive a failover — registrations (client records),
// grants (creation, every update: code exchange, refresh rotation, a new
// upstream token) and their deletion (revocation), and the spending of an
// authorization code — are followed by WAIT n timeout on the same connection
// (WAIT counts the replicas that acknowledged everything that connection
// wrote), so the request is answered only once n replicas hold the write.
//
// When fewer replicas acknowledge within the timeout the write is kept and
// reported as done: it is on the primary, and a 503 would make the client
// treat it as failed although it may well survive (a slow replica, not a dead
// primary) — and the writes here cannot be safely retried by the client (a
// spent code, a rotated refresh token). The shortfall is reported to the
// OnShortWait hook (the proxy counts and logs it). Operators who prefer
// refusing writes when replicas are missing set Redis's own
// min-replicas-to-write, which refuses before anything is written. A WAIT
// that fails outright (the connection to the primary broke: the primary is
// likely dying) is an error: the write may or may not exist.
//
// Tickets other than codes, caches, locks, counters and the sliding client
// expiry are not waited for: losing them costs a retry, not a grant.

// waitWrite runs the commands write queues and, when WAIT is configured, a
// WAIT in one pipeline on the connection of the node that serves key. write
// must record its commands and read their results after waitWrite returns:
// they run directly on the client when WAIT is off. The error is about the
// WAIT; the write's own outcome is in its commands.
func (s *Store) waitWrite(ctx context.Context, op, key string, write func(c redis.Cmdable)) error {
	if s.waitReplicas <= 0 {
		write(s.c)
		return nil
	}
	node, err := s.nodeFor(ctx, key)
	if err != nil {
		return fail(op, err)
	}
	var w *redis.Cmd
	if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		write(p)
		w = p.Do(ctx, "wait", s.waitReplicas, ms(s.waitTimeout))
		return nil
	}); err != nil {
		s.reloadAfter(ctx, err) // the write's or the WAIT's failure
	}
	n, err := w.Int64()
	if err != nil {
		return fmt.Errorf("redisstore: %s: wait for replicas (the write may have happened): %w", op, err)
	}
	if n < int64(s.waitReplicas) {
		if h := s.onShortWait.Load(); h != nil {
			(*h)(op, int(n))
		}
	}
	return nil
}

// nodeFor is the client whose single connection a write and its WAIT go on:
// the store's client, except on Cluster, where WAIT has no key to route by
// and must reach the primary that took the write.
func (s *Store) nodeFor(ctx context.Context, key string) (redis.Cmdable, error) {
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return cc.MasterForKey(ctx, key)
	}
	return s.c, nil
}

// reloadAfter refreshes a Cluster's slot map after a waited write failed on
// the network or was redirected: the per-node client used for it does not
// carry the reload hook newClient adds, nor follow MOVED.
func (s *Store) reloadAfter(ctx context.Context, err error) {
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return
	}
	if isNetError(err) || strings.HasPrefix(err.Error(), "MOVED ") || strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
		cc.ReloadState(ctx)
	}
}

// runScript queues or runs a script on c: EVALSHA with the EVAL fallback
// directly, EVAL inside a waited pipeline (the fallback needs the reply,
// which a pipeline only has after it ran; the server caches the script by
// its hash either way).
func runScript(ctx context.Context, c redis.Cmdable, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if _, ok := c.(redis.Pipeliner); ok {
		return sc.Eval(ctx, c, keys, args...)
	}
	return sc.Run(ctx, c, keys, args...)
}

// OnShortWait sets the function told when fewer replicas than WaitReplicas
// acknowledged a waited write within WaitTimeout (op names the operation,
// acked how many did). The write was kept. Set it before the store is used.
func (s *Store) OnShortWait(f func(op string, acked int)) { s.onShortWait.Store(&f) }

// maxWaitTimeout bounds WaitTimeout: a request should not hang on replicas,
// and a waited pipeline is read with the client's read timeout (3s by
// default). WAIT 0 would block forever, hence the 1ms minimum (WAIT takes
// whole milliseconds).
const maxWaitTimeout = time.Second

// CheckWait validates the WAIT settings (REDIS_WAIT_REPLICAS,
// REDIS_WAIT_TIMEOUT).
func CheckWait(replicas int, timeout time.Duration) error {
	switch {
	case replicas < 0:
		return fmt.Errorf("redisstore: the number of replicas to wait for must not be negative")
	case replicas > 0 && (timeout < time.Millisecond || timeout > maxWaitTimeout):
		return fmt.Errorf("redisstore: the wait for replicas needs a timeout between 1ms and %v", maxWaitTimeout)
	}
	return nil
}
