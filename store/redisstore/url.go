package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	defaultRedisPort    = "6379"
	defaultSentinelPort = "26379"
)

// supportedParams lists the query parameters parseURL understands; anything
// else is an error so that a typo does not silently fall back to a default.
const supportedParams = "dial_timeout, read_timeout, write_timeout, pool_size, client_name, " +
	"sentinel_username, sentinel_password"

func knownParam(name string) bool {
	switch name {
	case "dial_timeout", "read_timeout", "write_timeout", "pool_size", "client_name",
		"sentinel_username", "sentinel_password":
		return true
	}
	return false
}

// CheckURL reports what is wrong with a Redis URL (the forms are documented
// in the package comment), so configuration can be refused at start-up with
// every other problem. It never connects, and its errors never echo the URL.
func CheckURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// parseURL turns a Redis URL (the forms are documented in the package comment)
// into options for redis.NewUniversalClient. It never connects.
//
// Errors say what is wrong but never echo any part of the URL: it usually
// carries a password, and a password with an unencoded '/', '?' or '#' spills
// into what looks like the host, path or query.
func parseURL(raw string) (*redis.UniversalOptions, error) {
	bad := func(format string, args ...any) (*redis.UniversalOptions, error) {
		return nil, fmt.Errorf("redisstore: invalid Redis URL: "+format, args...)
	}
	if raw == "" {
		return bad("empty")
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }) {
		return bad("contains spaces or control characters")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return bad(`missing scheme (want e.g. "redis://host:6379/0")`)
	}
	var tlsOn, cluster, sentinel bool
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		tlsOn = true
	case "redis+cluster":
		cluster = true
	case "rediss+cluster":
		tlsOn, cluster = true, true
	case "redis+sentinel":
		sentinel = true
	case "rediss+sentinel":
		tlsOn, sentinel = true, true
	default:
		return bad("unsupported scheme (want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel)")
	}
	if strings.Contains(rest, "#") {
		return bad("fragments (#) are not allowed; percent-encode '#' in a password as %%23")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	if strings.Contains(path, "@") || strings.Contains(rawQuery, "@") {
		return bad("'@' after the host; percent-encode '/', '?' and '#' in the user name and password")
	}

	o := &redis.UniversalOptions{}

	// User info: the last '@' ends it, as in net/url, so an unencoded '@' in a
	// password still works.
	hostList := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		u, err := url.Parse("redis://" + authority[:i] + "@localhost")
		if err != nil || u.User == nil {
			return bad("malformed user info (percent-encode reserved characters in the user name and password)")
		}
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
		hostList = authority[i+1:]
	}

	defaultPort := defaultRedisPort
	if sentinel {
		defaultPort = defaultSentinelPort
	}
	hosts := strings.Split(hostList, ",")
	for i, h := range hosts {
		addr, err := parseHostPort(h, defaultPort)
		if err != nil {
			return bad("host %d of %d: %v", i+1, len(hosts), err)
		}
		o.Addrs = append(o.Addrs, addr)
	}
	// A comma list under redis:// or rediss:// means a cluster: a single node
	// has one address, and Sentinel has its own scheme.
	if len(o.Addrs) > 1 && !sentinel {
		cluster = true
	}

	segments := slices.DeleteFunc(strings.Split(path, "/"), func(s string) bool { return s == "" })
	switch {
	case sentinel:
		if len(segments) == 0 {
			return bad("a Sentinel URL needs the master name as its path, e.g. redis+sentinel://h1:26379,h2:26379/mymaster")
		}
		if len(segments) > 2 {
			return bad("path must be /master-name or /master-name/db")
		}
		name, err := url.PathUnescape(segments[0])
		if err != nil || name == "" {
			return bad("malformed master name")
		}
		o.MasterName = name
		if len(segments) == 2 {
			if o.DB, err = parseDB(segments[1]); err != nil {
				return bad("%v", err)
			}
		}
	default:
		if len(segments) > 1 {
			return bad("path must be empty or /db")
		}
		if len(segments) == 1 {
			db, err := parseDB(segments[0])
			if err != nil {
				return bad("%v", err)
			}
			if cluster && db != 0 {
				return bad("Redis Cluster only has database 0")
			}
			o.DB = db
		}
	}
	o.IsClusterMode = cluster

	if err := applyQuery(o, rawQuery, sentinel); err != nil {
		return bad("%v", err)
	}
	if tlsOn {
		// ServerName stays empty on purpose: crypto/tls then verifies every
		// connection against the host it dials, which is what a cluster or a
		// Sentinel setup (many hosts, one config) needs.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// parseHostPort validates one "host", "host:port" or "[v6]:port" entry and
// returns it as host:port.
func parseHostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("missing host")
	}
	host, port := h, defaultPort
	if strings.HasPrefix(h, "[") {
		end := strings.Index(h, "]")
		if end < 0 {
			return "", errors.New("missing ']' after an IPv6 address")
		}
		host = h[1:end]
		switch after := h[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
		default:
			return "", errors.New("unexpected text after ']'")
		}
		if net.ParseIP(host) == nil {
			return "", errors.New("not an IP address in brackets")
		}
	} else if i := strings.LastIndex(h, ":"); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", errors.New("put IPv6 addresses in brackets")
		}
	}
	if host == "" {
		return "", errors.New("missing host name")
	}
	if strings.ContainsAny(host, "@/?#%[]\\") {
		return "", errors.New("invalid characters in host name")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return "", errors.New("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func parseDB(s string) (int, error) {
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 || s[0] == '+' {
		return 0, errors.New("database must be a non-negative number")
	}
	return db, nil
}

// applyQuery sets the supported query parameters on o. Error messages name
// parameters but never their values (sentinel_password is one of them).
func applyQuery(o *redis.UniversalOptions, rawQuery string, sentinel bool) error {
	if rawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return errors.New("malformed query string")
	}
	for name, values := range q {
		if !knownParam(name) {
			// The name is not echoed: it may be a piece of a password.
			return errors.New("unknown query parameter (supported: " + supportedParams + ")")
		}
		if len(values) != 1 {
			return fmt.Errorf("parameter %q given more than once", name)
		}
		if strings.HasPrefix(name, "sentinel_") && !sentinel {
			return fmt.Errorf("parameter %q only applies to redis+sentinel URLs", name)
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"dial_timeout", &o.DialTimeout}, {"read_timeout", &o.ReadTimeout}, {"write_timeout", &o.WriteTimeout}} {
		if v := q.Get(d.name); v != "" {
			if *d.dst, err = parseTimeout(v); err != nil {
				return fmt.Errorf("parameter %q: %v", d.name, err)
			}
		}
	}
	if v := q.Get("pool_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errors.New(`parameter "pool_size" must be a positive number`)
		}
		o.PoolSize = n
	}
	o.ClientName = q.Get("client_name")
	o.SentinelUsername = q.Get("sentinel_username")
	o.SentinelPassword = q.Get("sentinel_password")
	return nil
}

// parseTimeout accepts a Go duration ("500ms", "3s") or, like go-redis's own
// URL parser, a plain number of seconds.
func parseTimeout(v string) (time.Duration, error) {
	if _, err := strconv.Atoi(v); err == nil {
		v += "s"
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("must be a positive duration such as 500ms or 3s")
	}
	return d, nil
}
