package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// referenceDurability reads an INFO reply as its format has it (Redis's
// INFO: lines "name:value" ended by CRLF, "# Section" headers and blank
// lines between): each line trimmed of white space, the name up to the
// line's first ':', the value the rest, a name's last line counting.
// found tells whether each of maxmemory, maxmemory_policy and
// aof_enabled has a non-empty value.
func referenceDurability(info string, cluster bool) (d RedisDurability, found bool) {
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexByte(line, ':'); i >= 0 {
			fields[line[:i]] = line[i+1:]
		} else {
			fields[line] = ""
		}
	}
	maxMemory, aof := fields["maxmemory"], fields["aof_enabled"]
	d.EvictionPolicy = fields["maxmemory_policy"]
	if !cluster {
		d.RunID = fields["run_id"]
	}
	if s, ok := fields["connected_slaves"]; ok {
		// A count beyond an int's range reads as the largest (or
		// least) one, still a count of replicas.
		if n, err := strconv.ParseInt(s, 10, 0); err == nil || errors.Is(err, strconv.ErrRange) {
			d.Replicas = int(n)
		}
	}
	_, d.WritesNeedReplicas = fields["min_slaves_good_slaves"]
	if maxMemory == "" || d.EvictionPolicy == "" || aof == "" {
		return RedisDurability{}, false
	}
	d.Evicts = maxMemory != "0" && d.EvictionPolicy != "noeviction"
	d.AppendOnly = aof != "0"
	return d, true
}

// infoToken reports whether s could be a value of INFO as Redis writes
// it: not empty, with no white space or control character.
func infoToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// evictionPolicies are the values of maxmemory-policy.
var evictionPolicies = []string{"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}

// redisInfo writes the reply of INFO (its default sections) as Redis
// 7 writes it, with want's settings: maxmemory maxMemory, replicas lines
// of connected replicas.
func redisInfo(want RedisDurability, maxMemory uint64, runID string, replicas int) string {
	aof := "0"
	if want.AppendOnly {
		aof = "1"
	}
	lines := []string{
		"# Server", "redis_version:7.0.15", "redis_mode:standalone", "run_id:" + runID, "tcp_port:6379", "",
		"# Clients", "connected_clients:3", "maxclients:10000", "",
		"# Memory", "used_memory:1019920", "used_memory_human:996.02K",
		"maxmemory:" + strconv.FormatUint(maxMemory, 10), "maxmemory_human:" + strconv.FormatUint(maxMemory>>20, 10) + "M",
		"maxmemory_policy:" + want.EvictionPolicy, "mem_fragmentation_ratio:9.64", "",
		"# Persistence", "loading:0", "rdb_changes_since_last_save:0", "aof_enabled:" + aof, "aof_rewrite_in_progress:0",
		"aof_last_write_status:ok", "",
		"# Replication", "role:master", "connected_slaves:" + strconv.Itoa(replicas),
	}
	if want.WritesNeedReplicas {
		lines = append(lines, "min_slaves_good_slaves:"+strconv.Itoa(replicas))
	}
	for i := range replicas {
		lines = append(lines, fmt.Sprintf("slave%d:ip=10.0.0.%d,port=6379,state=online,offset=1234,lag=0", i, i+2))
	}
	lines = append(lines, "master_failover_state:no-failover", "master_replid:2f5cb1e6bd3f4bce1d1eaa4e6af0a2b5d0b2d9a1",
		"master_repl_offset:1234", "", "# Keyspace", "db0:keys=2,expires=2,avg_ttl=59871", "")
	return strings.Join(lines, "\r\n")
}

// FuzzParseDurability: parseDurability reads any INFO reply as its
// format reads (referenceDurability): it fails exactly when maxmemory,
// maxmemory_policy or aof_enabled is missing or empty, gives a cluster
// node's reply no run_id, and takes the store's keys for evicted exactly
// when maxmemory is not 0 and the policy is not noeviction. A reply
// written as Redis writes it, with any maxmemory, policy, persistence,
// run_id and replication, reads back as those settings, the lines that
// share a prefix with the ones read (maxmemory_human, aof_rewrite_*,
// slaveN) making no difference.
func FuzzParseDurability(f *testing.F) {
	const runID = "a13cd50a82860be27202677395b4e5c268814fed"
	for _, seed := range []struct {
		info    string
		cluster bool
	}{
		{redisInfo(RedisDurability{EvictionPolicy: "noeviction"}, 0, runID, 0), false},
		{redisInfo(RedisDurability{EvictionPolicy: "volatile-lru", AppendOnly: true, WritesNeedReplicas: true}, 1<<30, runID, 2), true},
		{"maxmemory:0\nmaxmemory_policy:noeviction\naof_enabled:0\n", false},
		{"maxmemory:0\r\nmaxmemory_policy:\r\naof_enabled:1\r\n", false},
		{" maxmemory : 1\nmaxmemory_policy:allkeys-lru\naof_enabled:1", false},
		{"maxmemory:1\nmaxmemory:0\nmaxmemory_policy:a:b\naof_enabled:x\nconnected_slaves:-1\nrun_id:\n", false},
		{"maxmemory:1\rmaxmemory_policy:x\naof_enabled:1\nconnected_slaves:99999999999999999999\n", false},
		{"", false},
		{"\x00:\n:\n::\n", true},
	} {
		f.Add(seed.info, seed.cluster, uint64(1<<20), "allkeys-lru", true, runID, uint8(1), false)
	}
	f.Add("", false, uint64(0), "noeviction", false, "", uint8(0), true)
	f.Add("", true, uint64(18446744073709551615), "noeviction\r\n", false, "x y", uint8(255), true)
	f.Fuzz(func(t *testing.T, info string, cluster bool, maxMemory uint64, policy string, aof bool, runID string, replicas uint8, good bool) {
		got, err := parseDurability(info, cluster)
		want, ok := referenceDurability(info, cluster)
		if (err == nil) != ok || got != want {
			t.Fatalf("parseDurability(%q, %v) = %+v, %v; want %+v (readable %v)", info, cluster, got, err, want, ok)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Op != "info" || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) {
				t.Fatalf("parseDurability(%q): %#v, not an error of info that Redis is fine", info, err)
			}
		}
		if !infoToken(policy) {
			policy = evictionPolicies[len(policy)%len(evictionPolicies)]
		}
		if !infoToken(runID) {
			runID = ""
		}
		n := int(replicas % 8)
		want = RedisDurability{EvictionPolicy: policy, AppendOnly: aof, Replicas: n, WritesNeedReplicas: good,
			Evicts: maxMemory != 0 && policy != "noeviction"}
		if !cluster {
			want.RunID = runID
		}
		reply := redisInfo(want, maxMemory, runID, n)
		if got, err := parseDurability(reply, cluster); err != nil || got != want {
			t.Fatalf("parseDurability(%q, %v) = %+v, %v; want %+v", reply, cluster, got, err, want)
		}
	})
}
