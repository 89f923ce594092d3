package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterReloadInterval bounds how old the Cluster slot map may get while
// commands succeed. go-redis's default is a minute and UniversalOptions
// cannot change it, hence the ClusterClient is built here.
const clusterReloadInterval = 10 * time.Second

// newClient builds the go-redis client for parsed URL options.
//
// A ClusterClient learns about a new topology only from MOVED, ASK and
// READONLY replies, and from a periodic reload once its slot map is a minute
// old. A primary that dies answers none of these: its port refuses
// connections, and go-redis keeps sending that slot's commands to it (it
// marks the node failing, but that only steers reads to replicas when
// ReadOnly is set). So after a failover every command for the dead primary's
// slots failed for up to a minute, far longer than the promotion itself.
// reloadOnNetError asks for a fresh slot map whenever a command fails on the
// network; go-redis coalesces those requests (one CLUSTER SLOTS at a time,
// at most one every 200ms), so the failing commands keep a reload going
// until the cluster has promoted a replica and the map routes to it.
//
// Sentinel needs nothing of the kind: the failover client asks the
// Sentinels for the primary's address on every new connection and drops its
// connections when they announce a switch.
func newClient(o *redis.UniversalOptions) redis.UniversalClient {
	if o.MasterName != "" || (!o.IsClusterMode && len(o.Addrs) <= 1) {
		return redis.NewUniversalClient(o)
	}
	co := o.Cluster()
	co.ClusterStateReloadInterval = clusterReloadInterval
	c := redis.NewClusterClient(co)
	c.AddHook(reloadOnNetError{c})
	return c
}

// reloadOnNetError is a go-redis hook that reloads the cluster's slot map
// after a command or pipeline fails on the network.
type reloadOnNetError struct{ c *redis.ClusterClient }

func (h reloadOnNetError) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnNetError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnNetError) check(ctx context.Context, err error) {
	if isNetError(err) {
		h.c.ReloadState(ctx)
	}
}

// isNetError reports a failure to reach a node: refused or reset
// connections, timeouts, a node that hung up. A context deadline counts
// (a node that stopped answering shows up as one); a cancellation does not
// (the caller gave up). Redis error replies never count.
func isNetError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded)
}
