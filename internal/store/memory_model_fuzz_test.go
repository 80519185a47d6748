package store

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzMemoryModel runs a sequence of reservations, replacements,
// releases, limit takes and clock steps, read from the fuzzer's bytes,
// on a Memory store and on a plain map that models its reservations, and
// fails at the first answer in which they differ: the store's data is
// written in chunks, in place and moved when rebuilt (see shardData), and
// an entry read from the wrong bytes would replay another request's
// answer or let a repeat through. Keys are few, so that they meet
// (entries replaced, released, expired and taken again); values reach
// past a chunk's share (maxInChunk), so that some have chunks of their
// own; limit takes of the same keys put limits' entries among the
// reservations' without being modelled.
//
//	go test -run '^$' -fuzz FuzzMemoryModel ./internal/store/
func FuzzMemoryModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 1, 1, 3, 2, 1, 5, 4, 1, 0, 3, 9, 0})
	f.Add([]byte{0, 2, 200, 1, 2, 250, 0, 2, 10, 2, 2, 1, 4, 3, 7, 0, 2, 255})
	f.Add([]byte(strings.Repeat("\x00\x05\xff\x01\x05\xfe\x03\x10", 40)))
	f.Fuzz(func(t *testing.T, ops []byte) {
		now := time.Unix(1_700_000_000, 0)
		start := now
		m, err := NewMemory(MemoryOptions{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		type entry struct {
			value   string
			expires time.Time
		}
		model := map[string]entry{}
		live := func(key string) (entry, bool) {
			e, ok := model[key]
			if ok && !now.Before(e.expires) {
				delete(model, key)
				return entry{}, false
			}
			return e, ok
		}
		ctx := context.Background()
		// value is a value of about n*64 bytes (up to 16 KiB, past
		// maxInChunk), different for each operation.
		serial := 0
		value := func(n byte) string {
			serial++
			s := strconv.Itoa(serial) + ":"
			return s + strings.Repeat("v", int(n)*64)
		}
		ttl := func(n byte) time.Duration { return time.Duration(n%16+1) * time.Second }
		for i := 0; i+2 < len(ops); i += 3 {
			op, key, arg := ops[i]%5, "key-"+strconv.Itoa(int(ops[i+1]%8)), ops[i+2]
			at := now.Sub(start)
			switch op {
			case 0: // reserve
				v, d := value(arg), ttl(arg)
				ok, held, err := m.Reserve(ctx, "", key, v, d)
				if err != nil {
					t.Fatalf("at %v: Reserve(%s): %v", at, key, err)
				}
				e, exists := live(key)
				if ok == exists || ok && held != "" || !ok && held != e.value {
					t.Fatalf("at %v: Reserve(%s) = %v, %.20q; the model holds %v, %.20q", at, key, ok, held, exists, e.value)
				}
				if ok {
					model[key] = entry{v, now.Add(d)}
				}
			case 1, 2: // replace what is held, or something else
				e, exists := live(key)
				expect := e.value
				if op == 2 || !exists {
					expect = value(arg)
				}
				v, d := value(arg), ttl(arg)
				ok, err := m.Replace(ctx, "", key, expect, v, d)
				if err != nil {
					t.Fatalf("at %v: Replace(%s): %v", at, key, err)
				}
				if want := exists && expect == e.value; ok != want {
					t.Fatalf("at %v: Replace(%s) = %v, want %v", at, key, ok, want)
				}
				if ok {
					model[key] = entry{v, now.Add(d)}
				}
			case 3: // release
				e, exists := live(key)
				expect := e.value
				if arg%4 == 0 {
					expect = value(arg)
				}
				ok, err := m.Release(ctx, "", key, expect)
				if err != nil {
					t.Fatalf("at %v: Release(%s): %v", at, key, err)
				}
				if want := exists && expect == e.value; ok != want {
					t.Fatalf("at %v: Release(%s) = %v, want %v", at, key, ok, want)
				}
				if ok {
					delete(model, key)
				}
			case 4: // a limit's take of the key, or a step of the clock
				if arg%2 == 0 {
					if _, err := m.Allow(ctx, key, Limit{Count: 3, Period: time.Duration(arg%8+1) * time.Second}); err != nil {
						t.Fatalf("at %v: Allow(%s): %v", at, key, err)
					}
				} else {
					now = now.Add(time.Duration(arg) * 50 * time.Millisecond)
				}
			}
		}
		// Every key the model holds is held with its value: a reservation
		// of it finds that value.
		for key := range model {
			e, ok := live(key)
			if !ok {
				continue
			}
			if ok, held, err := m.Reserve(ctx, "", key, "x", time.Second); ok || err != nil || held != e.value {
				t.Fatalf("at the end: Reserve(%s) = %v, %.20q, %v; the model holds %.20q", key, ok, held, err, e.value)
			}
		}
	})
}
