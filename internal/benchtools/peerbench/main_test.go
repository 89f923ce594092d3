package main

import (
	"strings"
	"testing"
)

const wrkOK = `Running 10s test @ http://127.0.0.1:1/mcp
  1 threads and 64 connections
  Latency Distribution
     50%    2.88ms
     75%    6.07ms
     90%   18.67ms
     99%  %s
  895 requests in 5.08s, 588.22KB read
%sRequests/sec:    176.21
Transfer/sec:    115.81KB
`

func wrkOut(p99, extra string) string {
	return strings.Replace(strings.Replace(wrkOK, "%s", p99, 1), "%s", extra, 1)
}

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      result
		err       string
	}{
		{name: "ms", out: wrkOut("877.24ms", ""), want: result{rate: 176.21, p99: 877.24, n: 895}},
		{name: "us", out: wrkOut("512.00us", ""), want: result{rate: 176.21, p99: 0.512, n: 895}},
		{name: "s", out: wrkOut("1.16s ", ""), want: result{rate: 176.21, p99: 1160, n: 895}},
		{name: "non-2xx fails", out: wrkOut("1.00ms", "  Non-2xx or 3xx responses: 3\n"), err: "3 responses were not 2xx"},
		{name: "socket errors fail", out: wrkOut("1.00ms", "  Socket errors: connect 0, read 2, write 0, timeout 1\n"), err: "socket errors"},
		{name: "unreadable", out: "wrk: connection refused", err: "unreadable wrk output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.rate != tc.want.rate || got.n != tc.want.n || got.p99 < tc.want.p99-1e-9 || got.p99 > tc.want.p99+1e-9 {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses; times count from
	// the last ')'. utime 250 + stime 31 ticks of 10 ms.
	stat := "4242 (node (peer) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 11 0 12345 1000 200"
	if got := statCPU(stat); got.Milliseconds() != 2810 {
		t.Errorf("statCPU = %v, want 2.81s", got)
	}
	if got := statCPU("garbage"); got != 0 {
		t.Errorf("statCPU(garbage) = %v, want 0", got)
	}
}

func TestParseProcs(t *testing.T) {
	ps, err := parseProcs("clerk-mcp-proxy=12,fake Clerk=34")
	if err != nil || len(ps) != 3 || ps[1].name != "fake Clerk" || ps[1].pid != "34" || ps[2].pid != "self" {
		t.Fatalf("parseProcs = %v, %v", ps, err)
	}
	for _, bad := range []string{"x", "x=", "=1", "x=1,y=z"} {
		if _, err := parseProcs(bad); err == nil {
			t.Errorf("parseProcs(%q) accepted", bad)
		}
	}
}
