package bearer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

const (
	// jwksMinRefetch is the shortest time between two fetches: a token
	// with an unknown kid, a max-age of 0 or a failing provider never
	// cause more than one fetch per interval.
	jwksMinRefetch = time.Minute

	// jwksFetchTimeout bounds one fetch, connection to last byte.
	jwksFetchTimeout = 10 * time.Second

	// DefaultUnknownKidWait is the longest a request with an unknown kid
	// waits for the refetch it triggered (or joined) before it is
	// refused.
	DefaultUnknownKidWait = 3 * time.Second

	// jwksMaxBytes bounds the size of a fetched key set.
	jwksMaxBytes = 1 << 20
)

// jwksPool shares one jwksURL per URL and refresh interval between the
// handlers that name it and across config reloads, so a reload neither
// fetches again nor loses the last good set while the provider is down.
var jwksPool = caddy.NewUsagePool()

// jwksPoolKey identifies a shared jwksURL.
type jwksPoolKey struct {
	url     string
	refresh time.Duration
}

// loadJWKSURL returns the shared fetcher of url, creating and starting it
// (with a first, synchronous fetch) when no handler uses it yet. Each
// successful call needs a releaseJWKSURL.
func loadJWKSURL(url string, refresh time.Duration, now func() time.Time, logger func() *zap.Logger) (*jwksURL, error) {
	// Looked up before LoadOrNew: Range waits on an entry being
	// constructed, this one's too.
	seed := lastGoodSet(url)
	val, _, err := jwksPool.LoadOrNew(jwksPoolKey{url, refresh}, func() (caddy.Destructor, error) {
		s := newJWKSURL(url, refresh, now, logger)
		s.set.Store(seed)
		s.start()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*jwksURL), nil
}

// lastGoodSet is the key set that a running fetcher of url holds, nil
// when none holds one. A new fetcher of url (another refresh: a reload
// that changes it starts one while the config it replaces still holds the
// old) starts from it, so that a reload while the provider is down keeps
// the last good set, as a shared fetcher does, instead of refusing every
// token until the provider is back.
func lastGoodSet(url string) *[]verificationKey {
	var set *[]verificationKey
	jwksPool.Range(func(key, value any) bool {
		if key.(jwksPoolKey).url == url {
			set = value.(*jwksURL).current()
		}
		return set == nil
	})
	return set
}

// releaseJWKSURL drops a handler's use of s; the last one stops it.
func releaseJWKSURL(s *jwksURL) error {
	_, err := jwksPool.Delete(jwksPoolKey{s.url, s.refresh})
	return err
}

// jwksURL is a JWK Set fetched from an identity provider: at startup, on
// the refresh interval (or sooner when Cache-Control says so) and when a
// token names a kid the set lacks, at most once per jwksMinRefetch. One
// goroutine does all fetching, so a flood of unknown kids shares one fetch.
// A failed fetch keeps the last good set.
type jwksURL struct {
	url string
	// logURL is url as log lines show it, its password and query
	// values redacted (see redactURL).
	logURL  string
	refresh time.Duration
	now     func() time.Time
	logger  func() *zap.Logger
	client  *http.Client

	set atomic.Pointer[[]verificationKey]
	// skipped is the keys the last set taken skipped (skippedSummary),
	// warned of once; only fetch, which never runs twice at once, uses
	// it.
	skipped string
	// failing is whether the latest fetch failed, so that the first one
	// that succeeds after it says so at info, as the failure said it at
	// error; only fetch uses it.
	failing bool

	wake   chan struct{} // asks the fetch loop for a fetch now; capacity 1
	cancel context.CancelFunc
	done   chan struct{} // closed when the fetch loop has returned

	mu          sync.Mutex
	lastAttempt time.Time     // start of the latest fetch
	inflight    chan struct{} // closed when the running fetch ends; nil when none runs
	stopped     bool          // Destruct was called: no fetch runs any more
}

func newJWKSURL(url string, refresh time.Duration, now func() time.Time, logger func() *zap.Logger) *jwksURL {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client := &http.Client{
		Timeout:   jwksFetchTimeout,
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= jwksMaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", errJWKSRedirect, jwksMaxRedirects)
			}
			return checkRedirect(url, req.URL.String())
		},
	}
	return &jwksURL{
		url:     url,
		logURL:  redactURL(url),
		refresh: refresh,
		now:     now,
		logger:  logger,
		client:  client,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// start fetches the set once, synchronously, and then keeps it fresh in
// the background until Destruct. The loop outlives the config that
// started it (see jwksPool), so its context is its own, not the config's.
// A failing first fetch does not stop startup: the provider may be down
// for a moment, and the loop retries after jwksMinRefetch.
func (s *jwksURL) start() {
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	next := s.fetch(ctx)
	go s.loop(ctx, next)
}

// Destruct ends the fetch loop, waits for it and closes its connections;
// jwksPool calls it when the last handler using s is cleaned up. Requests
// of that config may still be running (a reload does not wait for them):
// from now on their unknown kids are refused at once (see refetch), and
// those waiting are released: a fetch running now is cancelled and ends,
// and one a refetch asked for that the loop never took (it ended first)
// will never run.
func (s *jwksURL) Destruct() error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	s.mu.Lock()
	if s.inflight != nil {
		close(s.inflight)
		s.inflight = nil
	}
	s.mu.Unlock()
	s.client.CloseIdleConnections()
	return nil
}

// caddyLog is Caddy's current default logger, named for the fetcher: a
// shared fetcher outlives the config (and the logs) of the handler that
// created it, so it asks for the logger at each line.
func caddyLog() *zap.Logger {
	return caddy.Log().Named("http.handlers.ucwa.jwks")
}

func (s *jwksURL) loop(ctx context.Context, next time.Duration) {
	defer close(s.done)
	timer := time.NewTimer(next)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
		timer.Reset(s.fetch(ctx))
	}
}

// keys returns the last good set, or nil before the first good fetch.
func (s *jwksURL) keys() []verificationKey {
	if p := s.current(); p != nil {
		return *p
	}
	return nil
}

// current is keys as the slice's address, which changes only when a
// fetch brings other keys: the token cache's sign that the keys changed.
func (s *jwksURL) current() *[]verificationKey {
	return s.set.Load()
}

// has reports whether the current set holds a key with this kid.
func (s *jwksURL) has(kid string) bool {
	return slices.ContainsFunc(s.keys(), func(k verificationKey) bool { return k.id == kid })
}

// refetch asks for a fetch because a token named an unknown kid, and
// waits until that fetch (or one already running) ends, ctx ends, or
// limit passes. Within jwksMinRefetch of the last fetch, and once s is
// stopped, it returns at once.
func (s *jwksURL) refetch(ctx context.Context, limit time.Duration) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	wait := s.inflight
	if wait == nil && s.now().Sub(s.lastAttempt) >= jwksMinRefetch {
		wait = s.beginLocked()
		select {
		case s.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	s.mu.Unlock()
	if wait == nil {
		return
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-wait:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// beginLocked marks a fetch as running; s.mu is held.
func (s *jwksURL) beginLocked() chan struct{} {
	if s.inflight == nil {
		s.inflight = make(chan struct{})
	}
	s.lastAttempt = s.now()
	return s.inflight
}

// jwksMaxRedirects is how many redirects one fetch follows, as Go's
// HTTP client does by default.
const jwksMaxRedirects = 10

var errJWKSRedirect = errors.New("jwks_url redirected to a URL it may not fetch from")

// checkRedirect refuses a redirect of the jwks_url from to target that
// the jwks_url setting itself would refuse (plain http anywhere but
// loopback) or that steps down from https to plain http: Go's client
// follows any of them, and a key set that came in the clear could have
// been swapped on the way.
func checkRedirect(from, target string) error {
	if err := checkJWKSURL(target); err != nil {
		return fmt.Errorf("%w: %w", errJWKSRedirect, err)
	}
	f, errFrom := neturl.Parse(from)
	t, errTarget := neturl.Parse(target)
	if errFrom != nil || errTarget != nil || f.Scheme == "https" && t.Scheme != "https" {
		return fmt.Errorf("%w: %q is not https, as the jwks_url is", errJWKSRedirect, redactURL(target))
	}
	return nil
}

// fetch gets the set, publishes it when it is good and returns when to
// fetch next.
func (s *jwksURL) fetch(ctx context.Context) time.Duration {
	s.mu.Lock()
	s.beginLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		close(s.inflight)
		s.inflight = nil
		// A wake-up still pending (the loop took its timer instead)
		// was sent before this fetch began: a refetch during it finds
		// inflight set and sends none. This fetch served its waiters;
		// left there, it would make the loop fetch again at once,
		// within jwksMinRefetch.
		select {
		case <-s.wake:
		default:
		}
		s.mu.Unlock()
	}()

	keys, maxAge, err := s.get(ctx)
	if err != nil {
		if ctx.Err() == nil {
			msg := "jwks_url fetch failed; keeping the last good key set"
			if len(s.keys()) == 0 {
				// At startup, or after fetches that all failed: there
				// is no last good set, and the operator must know that
				// the tokens this URL's keys sign are all refused.
				msg = "jwks_url fetch failed and no key set was ever fetched: tokens its keys sign are refused (401) until a fetch succeeds"
			}
			s.logger().Error(msg, zap.String("url", s.logURL), zap.Int("keys", len(s.keys())),
				zap.Duration("retry_in", jwksMinRefetch), zap.Error(err))
			s.failing = true
		}
		return jwksMinRefetch
	}
	if old := s.set.Load(); old == nil || !sameKeys(*old, keys) {
		s.set.Store(&keys)
	}
	if s.failing {
		// The end of the failure the error lines told of: an operator
		// who alerted on them learns it from the log too.
		s.failing = false
		s.logger().Info("jwks_url fetched again: tokens are checked with its keys", zap.String("url", s.logURL), zap.Int("keys", len(keys)))
	} else {
		s.logger().Debug("jwks_url fetched", zap.String("url", s.logURL), zap.Int("keys", len(keys)))
	}
	next := s.refresh
	if maxAge >= 0 && maxAge < next {
		next = max(maxAge, jwksMinRefetch)
	}
	return next
}

// get performs one request. maxAge is -1 when the response has no
// Cache-Control max-age.
func (s *jwksURL) get(ctx context.Context) ([]verificationKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, -1, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// The client's error names the URL it was fetching (the
		// jwks_url, or where it redirected), whose password Go hides but
		// not its query's values.
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			uerr.URL = redactURL(uerr.URL)
		}
		return nil, -1, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, -1, fmt.Errorf("status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, -1, err
	}
	if len(data) > jwksMaxBytes {
		return nil, -1, fmt.Errorf("key set larger than %d bytes", jwksMaxBytes)
	}
	keys, skipped, err := parseJWKS(data)
	if err != nil {
		return nil, -1, err
	}
	// Once for each set that skips other keys: the set is fetched again
	// every refresh, and on unknown kids.
	if summary := skippedSummary(skipped); summary != s.skipped {
		s.skipped = summary
		logSkipped(s.logger(), zap.String("url", s.logURL), skipped)
	}
	return keys, cacheMaxAge(resp.Header), nil
}

// cacheMaxAge reads how long a response may be kept from Cache-Control:
// no-store or no-cache count as 0; -1 when it says nothing.
func cacheMaxAge(h http.Header) time.Duration {
	age := time.Duration(-1)
	for _, directive := range strings.Split(strings.Join(h.Values("Cache-Control"), ","), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			if secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && secs >= 0 {
				age = time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second
			}
		}
	}
	return age
}
