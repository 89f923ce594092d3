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
