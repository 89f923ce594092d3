package redisstore

import (
	"crypto/tls"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	type want struct {
		addrs             []string
		user, pass        string
		db                int
		tls, cluster      bool
		master            string
		sentinelUser      string
		sentinelPass      string
		dial, read, write time.Duration
		poolSize          int
		clientName        string
	}
	tests := []struct {
		name string
		url  string
		want want
	}{
		{"single node", "redis://localhost:6379/0", want{addrs: []string{"localhost:6379"}}},
		{"default port and db", "redis://cache.internal", want{addrs: []string{"cache.internal:6379"}}},
		{"trailing slash", "redis://h/", want{addrs: []string{"h:6379"}}},
		{"db", "redis://h:1234/3", want{addrs: []string{"h:1234"}, db: 3}},
		{"user and password", "redis://proxy:p%40ss%2Fw%3Ard@h/1", want{addrs: []string{"h:6379"}, user: "proxy", pass: "p@ss/w:rd", db: 1}},
		{"password only", "redis://:secret@h", want{addrs: []string{"h:6379"}, pass: "secret"}},
		{"unencoded @ in password", "redis://:p@ss@h", want{addrs: []string{"h:6379"}, pass: "p@ss"}},
		{"scheme is case-insensitive", "REDIS://h", want{addrs: []string{"h:6379"}}},
		{"tls", "rediss://h:6380/2", want{addrs: []string{"h:6380"}, db: 2, tls: true}},
		{"ipv6", "redis://[::1]:7000/0", want{addrs: []string{"[::1]:7000"}}},
		{"ipv6 default port", "redis://[::1]", want{addrs: []string{"[::1]:6379"}}},
		{"cluster from a host list", "redis://h1:7000,h2:7001", want{addrs: []string{"h1:7000", "h2:7001"}, cluster: true}},
		{"cluster with db 0 and default ports", "redis://h1,h2/0", want{addrs: []string{"h1:6379", "h2:6379"}, cluster: true}},
		{"cluster from one endpoint", "redis+cluster://cfg.cache.example:6379", want{addrs: []string{"cfg.cache.example:6379"}, cluster: true}},
		{"cluster over tls with auth", "rediss+cluster://u:p@h1:7000,h2:7000", want{addrs: []string{"h1:7000", "h2:7000"}, user: "u", pass: "p", cluster: true, tls: true}},
		{"sentinel", "redis+sentinel://s1:26380,s2/mymaster", want{addrs: []string{"s1:26380", "s2:26379"}, master: "mymaster"}},
		{"sentinel with db and credentials", "rediss+sentinel://u:pw@s1/mymaster/2?sentinel_username=su&sentinel_password=spw",
			want{addrs: []string{"s1:26379"}, master: "mymaster", db: 2, user: "u", pass: "pw", tls: true, sentinelUser: "su", sentinelPass: "spw"}},
		{"sentinel master name is unescaped", "redis+sentinel://s1/my%20master", want{addrs: []string{"s1:26379"}, master: "my master"}},
		{"query parameters", "redis://h?dial_timeout=500ms&read_timeout=3&write_timeout=1s&pool_size=20&client_name=proxy",
			want{addrs: []string{"h:6379"}, dial: 500 * time.Millisecond, read: 3 * time.Second, write: time.Second, poolSize: 20, clientName: "proxy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseURL(tc.url)
			if err != nil {
				t.Fatalf("parseURL: %v", err)
			}
			got := want{
				addrs: o.Addrs, user: o.Username, pass: o.Password, db: o.DB,
				tls: o.TLSConfig != nil, cluster: o.IsClusterMode, master: o.MasterName,
				sentinelUser: o.SentinelUsername, sentinelPass: o.SentinelPassword,
				dial: o.DialTimeout, read: o.ReadTimeout, write: o.WriteTimeout,
				poolSize: o.PoolSize, clientName: o.ClientName,
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if o.TLSConfig != nil {
				// Empty so each node is verified against the host dialed.
				if o.TLSConfig.ServerName != "" || o.TLSConfig.MinVersion < tls.VersionTLS12 || o.TLSConfig.InsecureSkipVerify {
					t.Errorf("TLS config %+v", o.TLSConfig)
				}
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct {
		name, url, wantInError string
	}{
		{"empty", "", "empty"},
		{"no scheme", "localhost:6379", "scheme"},
		{"unsupported scheme", "http://h", "scheme"},
		{"unix socket", "unix:///tmp/redis.sock", "scheme"},
		{"missing host", "redis://", "missing host"},
		{"missing host with auth", "redis://:s3cr3t@/0", "missing host"},
		{"missing host name", "redis://:6379", "missing host"},
		{"empty host in a list", "redis://h1,,h2", "host 2 of 3"},
		{"port 0", "redis://h:0", "port"},
		{"port too big", "redis://h:65536", "port"},
		{"port not a number", "redis://h:abc", "port"},
		{"signed port", "redis://h:+80", "port"},
		{"db not a number", "redis://h/abc", "database"},
		{"negative db", "redis://h/-1", "database"},
		{"nested path", "redis://h/1/2", "path"},
		{"cluster with a db", "redis://h1,h2/3", "database 0"},
		{"sentinel without master", "redis+sentinel://s1", "master name"},
		{"sentinel with bad db", "redis+sentinel://s1/m/x", "database"},
		{"sentinel with long path", "redis+sentinel://s1/m/1/2", "path"},
		{"unknown parameter", "redis://h?s3cr3t=1", "unknown query parameter"},
		{"sentinel parameter on a node", "redis://h?sentinel_password=s3cr3t", "only applies"},
		{"repeated parameter", "redis://h?pool_size=1&pool_size=2", "more than once"},
		{"negative timeout", "redis://h?dial_timeout=-1s", "dial_timeout"},
		{"bad timeout", "redis://h?read_timeout=soon", "read_timeout"},
		{"zero pool size", "redis://h?pool_size=0", "pool_size"},
		{"malformed query", "redis://h?client_name=%zz", "query"},
		{"fragment", "redis://:s3c#r3t@h", "fragment"},
		{"unbracketed ipv6", "redis://::1:6379", "brackets"},
		{"unclosed bracket", "redis://[::1", "']'"},
		{"not an ip in brackets", "redis://[host]:1", "IP address"},
		{"text after bracket", "redis://[::1]x", "after ']'"},
		{"space", "redis://h /0", "spaces"},
		{"control character", "redis://h\n", "control"},
		{"unencoded slash in password", "redis://:s3c/r3t@h", "percent-encode"},
		{"unencoded question mark in password", "redis://:s3c?r3t@h", "percent-encode"},
		{"malformed user info", "redis://:s3c%zzr3t@h", "user info"},
		{"bad host characters", "redis://h%41st", "invalid characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseURL(tc.url)
			if err == nil {
				t.Fatalf("parseURL succeeded: %+v", o)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantInError) {
				t.Errorf("error %q does not mention %q", msg, tc.wantInError)
			}
			if !strings.HasPrefix(msg, "redisstore: invalid Redis URL: ") {
				t.Errorf("error %q lacks the common prefix", msg)
			}
			for _, leak := range []string{"s3c", "r3t"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error %q leaks part of the URL", msg)
				}
			}
		})
	}
}

// FuzzParseURL: parseURL must never panic, and whatever it accepts must be
// something go-redis can dial.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"redis://localhost:6379/0",
		"rediss://user:p%40ss@h:6380/2?dial_timeout=3s&pool_size=10",
		"redis://h1:7000,h2:7001",
		"redis+cluster://[::1]:7000",
		"redis+sentinel://:pw@s1:26379,s2/mymaster/1?sentinel_password=x",
		"redis://[::1",
		"redis://:@/",
		"redis://h?%zz",
		"redis+sentinel:///",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := parseURL(raw)
		if err != nil {
			if o != nil {
				t.Fatal("options returned along with an error")
			}
			return
		}
		if len(o.Addrs) == 0 {
			t.Fatal("no addresses")
		}
		for _, a := range o.Addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil || host == "" {
				t.Fatalf("address %q: %v", a, err)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				t.Fatalf("address %q: bad port", a)
			}
		}
		switch {
		case o.MasterName != "":
			if o.IsClusterMode {
				t.Fatal("both Sentinel and Cluster")
			}
		case o.IsClusterMode:
			if o.DB != 0 {
				t.Fatalf("cluster with db %d", o.DB)
			}
		default:
			if len(o.Addrs) != 1 {
				t.Fatalf("single node with %d addresses", len(o.Addrs))
			}
		}
		if o.DB < 0 {
			t.Fatalf("db %d", o.DB)
		}
	})
}
