package testredis_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/testutil/testredis"
)

// TestSentinelRestartedNodeKeepsData: the double failover that emptied
// Redis in a 10-minute chaos soak. The primary is killed and the replica
// promoted; the old primary is started again, and before the Sentinels have
// made it a replica the new primary stalls (SIGSTOP, past
// down-after-milliseconds, as on a starved machine), so the Sentinels fail
// over back to the old one and the stalled node then copies whatever that
// one holds. With its append-only file (how StartSentinel runs its data
// nodes) that is every key; started empty, it is nothing. Redis documents
// the hazard for nodes without persistence that restart on their own.
func TestSentinelRestartedNodeKeepsData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		empty bool // restart the old primary without its data
		want  int64
	}{
		{"restarted with its append-only file", false, 500},
		{"restarted empty", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out Sentinel's pause between two failovers (twice failover-timeout)
			ctx := context.Background()
			st := testredis.StartSentinel(t)
			first, second := st.Primary.Client(t), st.Replica.Client(t)
			for i := range 500 {
				if err := first.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := first.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
				t.Fatalf("WAIT: %d %v", n, err)
			}

			st.Primary.Stop(t)
			st.WaitPromoted(t)
			if tc.empty {
				st.Primary.RestartEmpty(t)
			} else {
				st.Primary.Restart(t)
			}
			if n := first.DBSize(ctx).Val(); n != tc.want {
				t.Fatalf("the restarted node holds %d keys, want %d", n, tc.want)
			}
			st.WaitReplicaUp(t, st.Primary)

			if err := st.Replica.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			st.WaitPrimary(t, st.Primary) // the second failover, back to the restarted node
			if err := st.Replica.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			st.Replica.WaitInSync(t) // the stalled node rejoins as a replica and copies the primary
			if a, b := first.DBSize(ctx).Val(), second.DBSize(ctx).Val(); a != tc.want || b != tc.want {
				t.Fatalf("after the second failover: %d and %d keys, want %d on both", a, b, tc.want)
			}
		})
	}
}
