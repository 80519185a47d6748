package store_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisUnboundCommands: a store without MaxPerOwner sends Redis,
// for every reservation call with an owner, the very commands edges
// sent before owners were counted, byte for byte (the scripts by their
// SHA1, as an edge of the version before sent them): a fleet that takes
// the share edge by edge keeps deduplicating, each edge's keys and
// scripts what the others run.
func TestRedisUnboundCommands(t *testing.T) {
	srv := testkit.StartRedis(t)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	monitor := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := monitor.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("MONITOR: %q %v", line, err)
	}
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: easyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	for i, call := range []func() error{
		func() error { _, _, err := r.Reserve(ctx, "a", "k1", "v", time.Minute); return err },
		func() error { _, _, err := r.Reserve(ctx, "a", "k2", "v", time.Minute); return err },
		func() error { _, err := r.Replace(ctx, "a", "k1", "v", "w", time.Minute); return err },
		func() error { _, err := r.Replace(ctx, "a", "k2", "v", "v", time.Minute); return err },
		func() error {
			_, errs := r.Renew(ctx, []string{"a"}, []string{"k2"}, []string{"v"}, time.Minute)
			return errs[0]
		},
		func() error { _, err := r.Release(ctx, "a", "k1", "w"); return err },
		func() error { _, err := r.Release(ctx, "a", "k2", "v"); return err },
		func() error { return r.ReleaseAll(ctx, "a", []string{"k3"}, []string{"v"})[0] },
	} {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.Echo(ctx, "end of the calls").Err(); err != nil {
		t.Fatal(err)
	}
	const (
		reserve = `"evalsha" "0a788890a3e3980003f9564d9d328fdcaaf7046a" "1"`
		replace = `"evalsha" "30de459a81fffd78996fdb9e41d9101c4cd5c133" "1"`
		release = `"evalsha" "4130e6fa85cd247cdb50bd65e8e82d96e47cacd1" "1"`
	)
	want := []string{
		reserve + ` "ucwa:k1" "v" "60000"`,
		reserve + ` "ucwa:k2" "v" "60000"`,
		replace + ` "ucwa:k1" "v" "w" "60000"`,
		replace + ` "ucwa:k2" "v" "v" "60000"`,
		replace + ` "ucwa:k2" "v" "v" "60000"`,
		release + ` "ucwa:k1" "w"`,
		release + ` "ucwa:k2" "v"`,
		release + ` "ucwa:k3" "v"`,
	}
	var got []string
	for {
		line, err := monitor.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		// 1700000000.000000 [0 127.0.0.1:5678] "evalsha" ...
		_, command, _ := strings.Cut(strings.TrimSpace(line), "] ")
		if strings.HasPrefix(command, `"echo" "end of the calls"`) {
			break
		}
		// The EVALs that follow a NOSCRIPT carry the source the SHA1
		// names.
		if strings.HasPrefix(command, `"evalsha"`) {
			got = append(got, command)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
