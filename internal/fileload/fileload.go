// Package fileload reads the files a config names when it loads (a
// start or a reload), waiting for each a bounded time: a file on a file
// system that hangs (an NFS server gone, a FUSE mount stuck) blocks its
// read in open(2) or read(2) for as long as it hangs, and a read in a
// handler's Provision would hold Caddy's config load, and with it every
// later reload, that long.
package fileload

import (
	"fmt"
	"os"
	"time"
)

// Wait is the longest a start or reload waits for one file, as it waits
// for a jwks_url's first fetch: long enough for a mount made on first
// use (autofs), where a local read takes microseconds.
const Wait = 10 * time.Second

// Read returns what read (os.ReadFile when nil) returns for path,
// waiting for it Wait at most on afterFunc's timer (time.AfterFunc when
// nil; a test gives a clock of its own). A read that takes longer is
// left to end unheeded, and Read returns an error that names path and
// says its file system hangs; the caller prefixes the setting, as for
// the read's own errors, which name path too.
func Read(path string, read func(string) ([]byte, error), afterFunc func(time.Duration, func()) interface{ Stop() bool }) ([]byte, error) {
	if read == nil {
		read = os.ReadFile
	}
	if afterFunc == nil {
		afterFunc = func(d time.Duration, f func()) interface{ Stop() bool } { return time.AfterFunc(d, f) }
	}
	type result struct {
		data []byte
		err  error
	}
	// Buffered: a read that returns after the wait is over leaves its
	// result there and ends.
	done := make(chan result, 1)
	go func() {
		data, err := read(path)
		done <- result{data, err}
	}()
	timedOut := make(chan struct{})
	timer := afterFunc(Wait, func() { close(timedOut) })
	defer timer.Stop()
	select {
	case r := <-done:
		return r.data, r.err
	case <-timedOut:
		return nil, fmt.Errorf("%s not read within %s: its file system hangs", path, Wait)
	}
}
