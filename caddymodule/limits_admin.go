package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

func init() {
	caddy.RegisterModule(LimitsAdmin{})
}

// LimitsAdmin is the admin API's endpoint that shows a caller's budget
// of a velocity limit and makes it whole again (module admin.api.ucwa),
// for an administrator who looks into a limit that stopped a caller and
// lifts it for a legitimate one: the store keeps a budget under a digest
// of its key, which no one can look up by hand, and a reload keeps it.
// Caddy serves it on its admin endpoint (localhost:2019 by default) with
// no config of its own:
//
//	GET  /ucwa/limits                             the limits
//	POST /ucwa/limits/show
//	POST /ucwa/limits/reset
//	{"limit": "<name>", "key": "<value>"}        the budget of a key's value
//	{"limit": "<name>", "client_ip": "<address>"} the budget of a client address
//
// The list answers {"limits": [{"name", "count", "per", "key",
// "applies_to", "store", "handlers"}]}: each definition of a limit in the
// running config's handlers (with its key template, never a value), the
// store that keeps its budgets (memory or redis) and how many handlers
// define it so, by name; during a reload, those of both configs.
//
// key is the value the limit's key expands to: with the default key,
// {http.ucwa.tenant_caller}, the caller's tid (or, without one, what
// {http.ucwa.tenant} is), a slash and its oid, else its sub, as the
// audit trail's caller shows them ('/' and '\' in either escaped with
// '\'). client_ip is the address of a client whose key expanded to
// nothing (over IPv6, its /64). The value goes in the body, not the URL,
// which Caddy logs. Every budget of that name in the running config's
// stores is shown or reset, those of each key template a limit of that
// name has; with a Redis store, the fleet's, on every edge that shares
// it. show answers {"limit", "budgets": [{"count", "per", "remaining",
// "next_in", "whole_in"}]}, one for each budget and definition of the
// limit, and takes nothing; reset answers {"limit", "budgets", "reset"}:
// the budgets found, and those of them that had events taken that had not
// come back yet. A limit no handler has is 404; a key without its slash
// while every limit of the name has the default key (no caller's: it
// would read whole), 400; a store that fails, 503.
type LimitsAdmin struct{}

// CaddyModule returns the Caddy module information.
func (LimitsAdmin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.ucwa",
		New: func() caddy.Module { return new(LimitsAdmin) },
	}
}

// Routes returns the admin routes of the endpoint.
func (LimitsAdmin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/ucwa/limits", Handler: caddy.AdminHandlerFunc(listLimitDefinitions)},
		{Pattern: "/ucwa/limits/show", Handler: caddy.AdminHandlerFunc(showLimitBudgets)},
		{Pattern: "/ucwa/limits/reset", Handler: caddy.AdminHandlerFunc(resetLimitBudgets)},
	}
}

// limitAdminRequest is the body of POST /ucwa/limits/show and reset.
type limitAdminRequest struct {
	Limit    string  `json:"limit"`
	Key      *string `json:"key,omitempty"`
	ClientIP string  `json:"client_ip,omitempty"`
}

// limitResetAnswer is the answer of a reset.
type limitResetAnswer struct {
	Limit   string `json:"limit"`
	Budgets int    `json:"budgets"`
	Reset   int    `json:"reset"`
}

// limitShowAnswer is the answer of a show.
type limitShowAnswer struct {
	Limit   string            `json:"limit"`
	Budgets []limitBudgetShow `json:"budgets"`
}

// limitBudgetShow is what one budget holds under one definition of the
// limit (count per per): the events it allows now; when none, how long
// until it allows one; and how long until it is whole. Durations are
// rounded up to the second, as Retry-After is.
type limitBudgetShow struct {
	Count     int    `json:"count"`
	Per       string `json:"per"`
	Remaining int    `json:"remaining"`
	NextIn    string `json:"next_in"`
	WholeIn   string `json:"whole_in"`
}

// limitListAnswer is the answer of a list.
type limitListAnswer struct {
	Limits []limitDefinition `json:"limits"`
}

// limitDefinition is a limit as handlers of the running config define
// it, and how many do.
type limitDefinition struct {
	Name      string        `json:"name"`
	Count     int           `json:"count"`
	Per       string        `json:"per"`
	Key       string        `json:"key"`
	AppliesTo string        `json:"applies_to,omitempty"`
	Store     string        `json:"store"`
	Handlers  int           `json:"handlers"`
	period    time.Duration // Per, for the order of the list
}

// maxLimitRequestBody bounds the body of a show or reset: a limit name
// and a key.
const maxLimitRequestBody = 64 << 10

// limitHandlers are the handlers provisioned with limits and a store, so
// that the admin endpoint finds their limits: those of the running
// config, and during a reload those of the config loaded or unloaded
// beside it, whose budgets are reset too (the same ones, unless the
// reload moves the store).
var limitHandlers = struct {
	mu  sync.Mutex
	set map[*Handler]struct{}
}{set: map[*Handler]struct{}{}}

// listLimits lists the handler in limitHandlers, until unlistLimits.
func (h *Handler) listLimits() {
	if len(h.limits) == 0 || h.store == nil {
		return
	}
	limitHandlers.mu.Lock()
	defer limitHandlers.mu.Unlock()
	limitHandlers.set[h] = struct{}{}
}

func (h *Handler) unlistLimits() {
	limitHandlers.mu.Lock()
	defer limitHandlers.mu.Unlock()
	delete(limitHandlers.set, h)
}

// limitBudget is a budget of a limit: a store key of the limit, in a
// store.
type limitBudget struct {
	store *storeUse
	key   string
	limit store.Limit
}

// budgetsOf returns the budgets of the listed handlers' limits named
// name for the key's value v (address: of the client address v), one for
// each store data and store key, each with the store of every handler
// that has it: any of them resets it, for they hold the same data.
func budgetsOf(name, v string, address bool) map[[2]string][]limitBudget {
	limitHandlers.mu.Lock()
	defer limitHandlers.mu.Unlock()
	budgets := map[[2]string][]limitBudget{}
	for h := range limitHandlers.set {
		for i := range h.limits {
			l := &h.limits[i]
			if l.name != name {
				continue
			}
			key := string(appendLimitDigest([]byte(l.storePrefix), l.key, v, address))
			id := [2]string{h.store.data, key}
			budgets[id] = append(budgets[id], limitBudget{h.store, key, l.limit})
		}
	}
	return budgets
}

// readLimitAdminRequest reads the body of a show or reset and returns its
// limit's name and budgets (see budgetsOf), and how they are named (by
// "key" or "client_ip").
func readLimitAdminRequest(w http.ResponseWriter, r *http.Request) (name, by string, budgets map[[2]string][]limitBudget, err error) {
	if r.Method != http.MethodPost {
		return "", "", nil, caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: POST a limit and a key or client_ip")}
	}
	var req limitAdminRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLimitRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", "", nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("reading the request: %v", err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "", nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: errors.New("reading the request: more than one JSON object")}
	}
	v, address, err := req.budget()
	if err != nil {
		return "", "", nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	budgets = budgetsOf(req.Limit, v, address)
	if len(budgets) == 0 {
		return "", "", nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no handler of the running config has a limit named %s with a store", strconv.Quote(req.Limit))}
	}
	if !address && !hasTenantSlash(v) && onlyDefaultKey(req.Limit) {
		// No caller has this budget: show would answer it whole and
		// reset would find nothing, as for a caller that took nothing,
		// and the administrator would take the caller for one within
		// its limit. Not echoed: Caddy logs the admin endpoint's errors.
		return "", "", nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf(
			"key: the limit %s keys its budgets by %s, the caller's tid, a slash and its oid (else its sub), as the audit trail's caller has them; "+
				"a key without that slash names no caller's budget (a token without tid: the slash, then its oid or sub)",
			strconv.Quote(req.Limit), DefaultLimitKey)}
	}
	by = "key"
	if address {
		by = "client_ip"
	}
	return req.Limit, by, budgets, nil
}

// onlyDefaultKey reports whether every listed handler's limit named name
// keys its budgets by DefaultLimitKey, whose values all hold a slash
// (see hasTenantSlash).
func onlyDefaultKey(name string) bool {
	limitHandlers.mu.Lock()
	defer limitHandlers.mu.Unlock()
	for h := range limitHandlers.set {
		for i := range h.limits {
			if l := &h.limits[i]; l.name == name && l.key != DefaultLimitKey {
				return false
			}
		}
	}
	return true
}

// hasTenantSlash reports whether v holds a '/' that '\' does not escape:
// the slash between the tenant and the caller of every value of
// DefaultLimitKey (see tenantCallerEscapes).
func hasTenantSlash(v string) bool {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '/':
			return true
		}
	}
	return false
}

// resetLimitBudgets serves POST /ucwa/limits/reset.
func resetLimitBudgets(w http.ResponseWriter, r *http.Request) error {
	name, by, budgets, err := readLimitAdminRequest(w, r)
	if err != nil {
		return err
	}
	answer := limitResetAnswer{Limit: name}
	var failed error
	for _, stores := range budgets {
		reset, found, err := resetBudget(r.Context(), stores)
		switch {
		case err != nil:
			failed = err
		case found:
			answer.Budgets++
			if reset {
				answer.Reset++
			}
		}
	}
	logger := caddy.Log().Named("admin.api.ucwa")
	if failed != nil {
		logger.Error("limit budgets not all reset: a store failed", zap.String("limit", name), zap.String("by", by),
			zap.Int("budgets", answer.Budgets), zap.Int("reset", answer.Reset), zap.Error(failed))
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable,
			Err: fmt.Errorf("%d of the limit's budgets reset, the others not: %w; send the reset again", answer.Budgets, failed)}
	}
	// Neither the key's value nor the address: who the caller is shows
	// in the admin endpoint's own log of the request.
	logger.Info("limit budgets reset", zap.String("limit", name), zap.String("by", by),
		zap.Int("budgets", answer.Budgets), zap.Int("reset", answer.Reset))
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(answer)
}

// showLimitBudgets serves POST /ucwa/limits/show. It changes nothing and
// writes no log line of its own: Caddy's admin endpoint logs the request,
// and its error if it fails.
func showLimitBudgets(w http.ResponseWriter, r *http.Request) error {
	name, _, budgets, err := readLimitAdminRequest(w, r)
	if err != nil {
		return err
	}
	answer := limitShowAnswer{Limit: name, Budgets: []limitBudgetShow{}}
	// In the order of the store keys: the same answer for the same budgets.
	for _, id := range slices.SortedFunc(maps.Keys(budgets), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	}) {
		stores := budgets[id]
		ahead, found, err := peekBudget(r.Context(), stores)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("reading the limit's budgets: %w", err)}
		}
		if !found {
			continue
		}
		var shown []store.Limit
		for _, b := range stores {
			if slices.Contains(shown, b.limit) {
				continue
			}
			shown = append(shown, b.limit)
			remaining, next := b.limit.Standing(ahead)
			answer.Budgets = append(answer.Budgets, limitBudgetShow{
				Count:     b.limit.Count,
				Per:       b.limit.Period.String(),
				Remaining: remaining,
				NextIn:    secondsUp(next).String(),
				WholeIn:   secondsUp(ahead).String(),
			})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(answer)
}

// listLimitDefinitions serves GET /ucwa/limits. Like a show, it changes
// nothing and writes no log line of its own.
func listLimitDefinitions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: GET the limits")}
	}
	// Each definition, Handlers 0, and how many handlers define it.
	handlers := map[limitDefinition]int{}
	limitHandlers.mu.Lock()
	for h := range limitHandlers.set {
		backend := "other" // a store module of neither of the edge's kinds
		switch {
		case h.store.memory != nil:
			backend = "memory"
		case h.store.redis != nil:
			backend = "redis"
		}
		for i := range h.limits {
			l := &h.limits[i]
			handlers[limitDefinition{Name: l.name, Count: l.limit.Count, Per: l.limit.Period.String(), Key: l.key,
				AppliesTo: limitClassNames[l.class], Store: backend, period: l.limit.Period}]++
		}
	}
	limitHandlers.mu.Unlock()
	answer := limitListAnswer{Limits: []limitDefinition{}}
	for d, n := range handlers {
		d.Handlers = n
		answer.Limits = append(answer.Limits, d)
	}
	slices.SortFunc(answer.Limits, func(a, b limitDefinition) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.period, b.period), a.Count-b.Count,
			strings.Compare(a.Key, b.Key), strings.Compare(a.AppliesTo, b.AppliesTo), strings.Compare(a.Store, b.Store))
	})
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(answer)
}

// secondsUp is d rounded up to the second.
func secondsUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// budget returns the value whose budget req names, and whether it is a
// client address's.
func (req *limitAdminRequest) budget() (v string, address bool, err error) {
	switch {
	case req.Limit == "":
		return "", false, errors.New("limit: the name of a limit is required")
	case req.Key != nil && req.ClientIP != "":
		return "", false, errors.New("give key or client_ip, not both")
	case req.Key != nil && *req.Key == "":
		return "", false, errors.New("key: a key that expands to nothing takes from the client address's budget: give its client_ip")
	case req.Key != nil:
		return *req.Key, false, nil
	case req.ClientIP == "":
		return "", false, errors.New("give key (the value the limit's key expands to) or client_ip")
	}
	addr, err := netip.ParseAddr(req.ClientIP)
	if err != nil || addr.Zone() != "" {
		// Not echoed: Caddy logs the admin endpoint's errors.
		return "", false, errors.New("client_ip: not an IP address (without a zone)")
	}
	return addressNetwork(addr.String()), true, nil
}

// resetBudget resets one budget (see inFirstOpen).
func resetBudget(ctx context.Context, stores []limitBudget) (reset, found bool, err error) {
	return inFirstOpen(stores, func(b limitBudget) (bool, error) { return b.store.ResetLimit(ctx, b.key) })
}

// peekBudget reads how far one budget's time is ahead of now (see
// inFirstOpen).
func peekBudget(ctx context.Context, stores []limitBudget) (ahead time.Duration, found bool, err error) {
	return inFirstOpen(stores, func(b limitBudget) (time.Duration, error) { return b.store.PeekLimit(ctx, b.key) })
}

// inFirstOpen runs call on the first of one budget's stores that is not
// closed (found false when all are: their config is going away), with
// the store's accounting of its calls (see storeUse.end).
func inFirstOpen[T any](stores []limitBudget, call func(limitBudget) (T, error)) (v T, found bool, err error) {
	for _, b := range stores {
		epoch := b.store.begin()
		v, err := call(b)
		if errors.Is(err, store.ErrClosed) {
			continue
		}
		b.store.end(epoch, err)
		return v, err == nil, err
	}
	return v, false, nil
}

// Interface guards
var (
	_ caddy.Module      = LimitsAdmin{}
	_ caddy.AdminRouter = LimitsAdmin{}
)
