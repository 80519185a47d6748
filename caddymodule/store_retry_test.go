package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisClusterRetriedReserve: go-redis's cluster client sends a
// command again by itself (MaxRedirects, whatever MaxRetries says) when
// the connection ends before the reply (EOF), as when a node or a proxy
// in front of it drops the connection after Redis ran the command: the
// reserve script then runs twice, and the second run finds the key held
// by the request's own reservation. That reservation is the request's (its
// token is its alone): the request is delivered once, and its repeat gets
// its answer (a batch's, 409), where the edge took its own reservation for
// another request's and answered 409 AlreadyExists a request it never
// delivered, and every repeat of it for the window. So for a batch whose
// first part's reservation ran twice.
func TestRedisClusterRetriedReserve(t *testing.T) {
	srv := testkit.StartRedis(t)
	proxy := newReplyCutter(t, srv.Addr())
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), `store redis redis://`+proxy.Addr()+`/0 {
			timeout 5s
			cluster
		}`, "primary "+pool.Addr()))
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(),
		jwt.MapClaims{"tid": "tenant-1", "oid": "oid-a", "scp": "Conversations.Initiate"}))
	caller := http.Header{"Authorization": {"Bearer " + token}}
	const app = "/ucwa/v1/applications/1"
	batch := testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller, Body: batchBody(
		innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"retried-batch"}`),
		"POST "+app+"/communication/conversations/c1/phoneAudio/addPhoneAudio?to=4255550000&operationId=retried-batch-add HTTP/1.1\r\n\r\n")}

	// delivered counts the requests the pool received that hold op: in
	// their body (a batch's parts too) or query.
	delivered := func(op string) int {
		n := 0
		for _, r := range pool.Received() {
			if strings.Contains(r.Body+"?"+r.RawQuery, `"operationId":"`+op+`"`) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name   string
		req    testkit.Request
		op     string // the operationId whose reservation runs twice
		replay bool   // a repeat gets the answer again, else 409
	}{
		{"request", idemCall{header: caller, op: "retried-reserve"}.request(), "retried-reserve", true},
		{"batch", batch, "retried-batch", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := proxy.cut.Load()
			proxy.cutNext(isReserve)
			first := e.send(tc.req)
			if got := proxy.cut.Load() - cut; got != 1 {
				t.Fatalf("the proxy cut %d replies, want 1", got)
			}
			if first.Status != http.StatusCreated || delivered(tc.op) != 1 {
				t.Fatalf("a request whose reservation Redis ran twice: %d %s, delivered %d times; want the pool's 201, delivered once",
					first.Status, first.Body, delivered(tc.op))
			}
			if repeat := e.send(tc.req); tc.replay {
				assertReplay(t, repeat, first)
			} else {
				assertPartConflict(t, repeat, 1)
			}
			if got := delivered(tc.op); got != 1 {
				t.Errorf("delivered %d times, want once", got)
			}
		})
	}
}

// TestRedisClusterRetriedTakeover: an emergency call that failed keeps
// its failure for the window; a repeat that is an emergency call takes
// the key over, and when the reply of that takeover is lost and go-redis's
// cluster client runs it again (it then finds the key changed), the
// repeat reads the key again and finds its own token: the takeover is its
// own. That repeat reaching no pool (410), the key gets the failure back,
// so that a repeat that is no emergency call now (a reload took the
// number off the emergency numbers) gets that failure again, never a
// second call, where the key was released (the takeover's value not
// known) and that repeat delivered.
func TestRedisClusterRetriedTakeover(t *testing.T) {
	srv := testkit.StartRedis(t)
	proxy := newReplyCutter(t, srv.Addr())
	pool := newIdemPool(t, "primary")
	cfg := idemCaddyfile(idemAuth(t), `store redis redis://`+proxy.Addr()+`/0 {
			timeout 5s
			cluster
		}`, "primary "+pool.Addr(), "destinations {\n\t\t\temergency 911 +14255550100\n\t\t}")
	e := startEdge(t, "caddyfile", cfg)
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	call := func(answer string) idemCall {
		return idemCall{header: caller, op: "retried-takeover", answer: answer, body: `{"to":"4255550100","operationId":"retried-takeover"}`}
	}
	failed := e.call(call("conflict"))
	if failed.Status != http.StatusConflict {
		t.Fatalf("the emergency call: %d %s, want the pool's 409", failed.Status, failed.Body)
	}

	pool.Kill()
	proxy.cutNext(isTakeover)
	if resp := e.call(call("")); resp.Status != http.StatusGone {
		t.Fatalf("its repeat, the pool down: %d %s, want 410", resp.Status, resp.Body)
	}
	if got := proxy.cut.Load(); got != 1 {
		t.Fatalf("the proxy cut %d replies, want 1", got)
	}
	pool.Restart(t)
	e.Load("caddyfile", strings.Replace(cfg, "emergency 911 +14255550100", "emergency 911", 1))
	assertReplay(t, e.call(call("")), failed)
	if got := deliveries(pool.Pool, "retried-takeover"); got != 1 {
		t.Errorf("delivered %d times, want once", got)
	}
}

// TestRedisClusterRetriedLimits: when the reply of a limits' script is
// lost after Redis ran it, go-redis's cluster client runs the script
// again (see TestRedisClusterRetriedReserve); a take or a refund is
// counted once all the same. With `limit calls 2 per 1h` a caller is
// delivered two calls an hour, no more and no fewer: a take run twice
// (AllowAll's, and AllowN's for an emergency call's other number)
// counted two events, so the caller's second call was refused with one
// delivered, and a refund run twice gave back two events for one, so
// the caller was delivered three calls.
func TestRedisClusterRetriedLimits(t *testing.T) {
	srv := testkit.StartRedis(t)
	proxy := newReplyCutter(t, srv.Addr())
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", limitCaddyfile(t, pool, `store redis redis://`+proxy.Addr()+`/0 {
			timeout 5s
			cluster
		}`, "limit calls 2 per 1h"))
	for _, tc := range []struct {
		name string
		// send sends the caller's first requests, with the proxy armed to
		// cut the reply of their script'th limits' script; their last is
		// delivered when delivered.
		send      func(t *testing.T, h http.Header) testkit.Response
		script    int
		delivered bool
	}{
		{"take", func(_ *testing.T, h http.Header) testkit.Response { return e.send(callTo("+14255551234", h)) }, 1, true},
		{"emergency call's take", func(_ *testing.T, h http.Header) testkit.Response {
			return e.send(emergencyCallTo("+442071234567", h))
		}, 1, true},
		{"refund", func(t *testing.T, h http.Header) testkit.Response {
			if resp := e.send(callTo("+14255551234", h)); resp.Status != http.StatusCreated {
				t.Fatalf("a call: %d %s, want 201", resp.Status, resp.Body)
			}
			pool.Kill()
			defer pool.Restart(t)
			resp := e.send(callTo("+14255551234", h))
			if resp.Status != http.StatusGone {
				t.Fatalf("a call, the pool down: %d %s, want 410", resp.Status, resp.Body)
			}
			return resp
		}, 3, false}, // the calls' takes, then the refund
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice := caller{"tenant-1", t.Name()}.header(t)
			before, cut := pool.Requests.Load(), proxy.cut.Load()
			proxy.cutNext(nth(tc.script, isLimitScript))
			if resp := tc.send(t, alice); tc.delivered && resp.Status != http.StatusCreated {
				t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
			}
			if got := proxy.cut.Load() - cut; got != 1 {
				t.Fatalf("the proxy cut %d replies, want 1", got)
			}
			for pool.Requests.Load()-before < 2 {
				resp := e.send(callTo("+14255551234", alice))
				if resp.Status != http.StatusCreated {
					t.Fatalf("with %d calls delivered: %d %s, want 201", pool.Requests.Load()-before, resp.Status, resp.Body)
				}
			}
			assertLimited(t, e.send(callTo("+14255551234", alice)), "calls", 1800)
			if got := pool.Requests.Load() - before; got != 2 {
				t.Errorf("the pool got %d requests, want 2", got)
			}
		})
	}
}

// replyCutter stands between the edge and a standalone Redis as a
// one-node Redis Cluster that owns every slot (it answers CLUSTER SLOTS
// with itself) and passes every other command on; armed (cutNext), it
// drops the reply of the next command it is armed for that Redis ran
// (its reply is no error, such as NOSCRIPT), and closes the connection,
// as a node that fails just then.
type replyCutter struct {
	ln    net.Listener
	redis string
	mu    sync.Mutex
	armed func(args []string) bool // nil: disarmed
	conns []net.Conn               // the edge's, closed with the proxy
	cut   atomic.Int32
	wg    sync.WaitGroup
}

// isReserve tells the reserve script's command: EVALSHA or EVAL of one
// key and two arguments (the value and the TTL).
func isReserve(args []string) bool { return isScript(args, 1, 2) }

// isTakeover tells the replace script's command that replaces a value
// with another (a renewal replaces one with itself): one key and three
// arguments (the value expected, the new one and the TTL).
func isTakeover(args []string) bool { return isScript(args, 1, 3) && args[4] != args[5] }

// isLimitScript tells a script of the limits (a take or a refund): its
// first key is a limit's.
func isLimitScript(args []string) bool {
	return len(args) > 3 && (strings.EqualFold(args[0], "evalsha") || strings.EqualFold(args[0], "eval")) &&
		strings.HasPrefix(args[3], "rate:")
}

// nth tells the nth command that match tells, of those it is asked of.
func nth(n int, match func(args []string) bool) func(args []string) bool {
	seen := 0
	return func(args []string) bool {
		if match(args) {
			seen++
		}
		return seen == n
	}
}

// isScript tells a script's command of a request with this many keys
// and arguments; the startup check's run of the release script, at a
// moment of its own on a key of its own (ucwa:check:...), is none.
func isScript(args []string, keys, argv int) bool {
	return len(args) == 3+keys+argv && (strings.EqualFold(args[0], "evalsha") || strings.EqualFold(args[0], "eval")) &&
		args[2] == strconv.Itoa(keys) && !(keys > 0 && strings.HasPrefix(args[3], "ucwa:check:"))
}

func newReplyCutter(t *testing.T, redisAddr string) *replyCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyCutter{ln: ln, redis: redisAddr}
	p.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, conn)
			p.mu.Unlock()
			p.wg.Go(func() { p.serve(conn) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, conn := range p.conns {
			_ = conn.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *replyCutter) Addr() string { return p.ln.Addr().String() }

// cutNext arms the proxy for the next command that match tells.
func (p *replyCutter) cutNext(match func(args []string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = match
}

// cutting reports whether the reply to args, which Redis ran, is to be
// cut, and disarms the proxy if so.
func (p *replyCutter) cutting(args []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.armed == nil || !p.armed(args) {
		return false
	}
	p.armed = nil
	p.cut.Add(1)
	return true
}

func (p *replyCutter) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.redis)
	if err != nil {
		return
	}
	defer server.Close()
	fromClient, fromServer := bufio.NewReader(client), bufio.NewReader(server)
	for {
		raw, args, err := readRESPCommand(fromClient)
		if err != nil {
			return
		}
		if len(args) == 2 && strings.EqualFold(args[0], "cluster") && strings.EqualFold(args[1], "slots") {
			port := p.ln.Addr().(*net.TCPAddr).Port
			id := strings.Repeat("a", 40)
			fmt.Fprintf(client, "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$40\r\n%s\r\n", port, id)
			continue
		}
		if _, err := server.Write(raw); err != nil {
			return
		}
		reply, err := readRESPReply(fromServer)
		if err != nil {
			return
		}
		if ran := reply[0] != '-'; ran && p.cutting(args) {
			return // Redis ran it; its reply is lost with the connection
		}
		if _, err := client.Write(reply); err != nil {
			return
		}
	}
}

// readRESPCommand reads a command a client sends (an array of bulk
// strings): its bytes as they came, and its arguments.
func readRESPCommand(r *bufio.Reader) (raw []byte, args []string, err error) {
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*") {
		return nil, nil, fmt.Errorf("not a command: %q %v", line, err)
	}
	raw = append(raw, line...)
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return nil, nil, err
	}
	for range n {
		head, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(head, "$") {
			return nil, nil, fmt.Errorf("not a bulk string: %q %v", head, err)
		}
		size, err := strconv.Atoi(strings.TrimSpace(head[1:]))
		if err != nil {
			return nil, nil, err
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, nil, err
		}
		raw = append(append(raw, head...), data...)
		args = append(args, string(data[:size]))
	}
	return raw, args, nil
}

// readRESPReply reads one reply of Redis (RESP2 or RESP3), as its bytes.
func readRESPReply(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadString('\n')
	if err != nil || len(line) < 3 {
		return nil, fmt.Errorf("not a reply: %q %v", line, err)
	}
	raw := []byte(line)
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	switch line[0] {
	case '$', '=', '!': // bulk string, verbatim string, blob error
		if n < 0 {
			return raw, nil
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		return append(raw, data...), nil
	case '*', '~', '>', '%', '|': // array, set, push, map, attribute
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for range max(n, 0) {
			elem, err := readRESPReply(r)
			if err != nil {
				return nil, err
			}
			raw = append(raw, elem...)
		}
		if line[0] == '|' { // an attribute comes before the reply it is of
			elem, err := readRESPReply(r)
			if err != nil {
				return nil, err
			}
			raw = append(raw, elem...)
		}
		return raw, nil
	}
	return raw, nil // a simple string, error, integer, null, boolean, double or big number
}
