// Package fileload reads the files a config names when it loads (a
// start or a reload), waiting for each a bounded time: a file on a file
// system that hangs (an NFS server gone, a FUSE mount stuck) blocks its
// read in open(2) or read(2) for as long as it hangs, and a read in a
// handler's Provision would hold Caddy's config load, and with it every
// later reload, that long.
//
// A read that outlasts its wait is left running, holding a goroutine and
// an OS thread, and no other read of its path starts until it returns: a
// load that comes meanwhile waits for that same read, on a wait of its
// own, so that reloads retried while a file system hangs hold one thread
// for the path, not one more each (Go ends a process at 10,000 threads).
package fileload

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sync/singleflight"
)

// Wait is the longest a start or reload waits for one file, as it waits
// for a jwks_url's first fetch: long enough for a mount made on first
// use (autofs), where a local read takes microseconds.
const Wait = 10 * time.Second

// Reader reads files with one read function, with at most one read of a
// path in flight at a time. Readers share no reads: one made with a read
// function of its own (a limit on the size, a test's hook) waits only
// for reads made by that function.
type Reader struct {
	read  func(path string) ([]byte, error)
	reads singleflight.Group // by path
}

// NewReader returns a Reader whose reads call read.
func NewReader(read func(path string) ([]byte, error)) *Reader {
	return &Reader{read: read}
}

// MaxBytes bounds a file that Read reads: far more than any key file or
// CA bundle (a system's whole bundle is about 200 KB), so that a config
// naming something else by mistake (/dev/zero, a log, a FIFO a writer
// keeps filling) is refused at its load rather than read until memory
// runs out.
const MaxBytes = 4 << 20

// ReadFile reads path as os.ReadFile does, refusing a file of more than
// limit bytes with an error that names path.
func ReadFile(path string, limit int) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// files is Read's Reader.
var files = NewReader(func(path string) ([]byte, error) { return ReadFile(path, MaxBytes) })

// Read reads path with ReadFile, of MaxBytes at most, as (*Reader).Read
// does, through one Reader that every caller of Read shares.
func Read(path string, afterFunc func(time.Duration, func()) interface{ Stop() bool }) ([]byte, error) {
	return files.Read(path, afterFunc)
}

// Read returns what r's read function returns for path, waiting for it
// Wait at most on afterFunc's timer (time.AfterFunc when nil; a test
// gives a clock of its own). When a read of path is in flight, started
// by an earlier Read that may have given up on it, Read waits for that
// read instead of starting another; once it has returned, the next Read
// reads afresh. A read that takes longer than the wait is left to end
// unheeded, and Read returns an error that names path and says its file
// system hangs; the caller prefixes the setting, as for the read's own
// errors, which name path too.
func (r *Reader) Read(path string, afterFunc func(time.Duration, func()) interface{ Stop() bool }) ([]byte, error) {
	if afterFunc == nil {
		afterFunc = func(d time.Duration, f func()) interface{ Stop() bool } { return time.AfterFunc(d, f) }
	}
	// DoChan's channel is buffered: a read that returns after the wait
	// is over leaves its result there and ends.
	done := r.reads.DoChan(path, func() (any, error) { return r.read(path) })
	timedOut := make(chan struct{})
	timer := afterFunc(Wait, func() { close(timedOut) })
	defer timer.Stop()
	select {
	case res := <-done:
		data, _ := res.Val.([]byte)
		// Each caller gets bytes of its own, as from a read of its own.
		if res.Shared {
			data = bytes.Clone(data)
		}
		return data, res.Err
	case <-timedOut:
		return nil, fmt.Errorf("%s not read within %s: its file system hangs", path, Wait)
	}
}
