package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestIsNetError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{refused, true},
		{fmt.Errorf("redisstore: get grant: %w", refused), true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},                     // the caller gave up
		{redis.Nil, false},                            // a reply
		{errors.New("MOVED 1 127.0.0.1:7000"), false}, // go-redis handles redirects itself
	} {
		if got := isNetError(c.err); got != c.want {
			t.Errorf("isNetError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestNewClientTopology: only Cluster URLs get the ClusterClient with the
// reload hook; the other forms keep go-redis's own choice.
func TestNewClientTopology(t *testing.T) {
	for url, cluster := range map[string]bool{
		"redis://127.0.0.1:1/0":             false,
		"redis+sentinel://127.0.0.1:1/m":    false,
		"redis://127.0.0.1:1,127.0.0.1:2/0": true,
		"redis+cluster://127.0.0.1:1":       true,
	} {
		o, err := parseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(o)
		_, isCluster := c.(*redis.ClusterClient)
		_ = c.Close()
		if isCluster != cluster {
			t.Errorf("%s: ClusterClient = %v, want %v", url, isCluster, cluster)
		}
	}
}
