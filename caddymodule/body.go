package caddymodule

import (
	"bytes"
	"errors"
	"sync"
)

// bodyReader is a request body over a byte slice; closing it does nothing.
// It is io.NopCloser(bytes.NewReader(b)) in one allocation, but for its
// reads, which it guards so that what they left can be told while a
// pool's transport still reads it on a goroutine of its own, and stopped
// there (see stop).
//
// quic-go's HTTP/3 client writes a request's body from a goroutine of
// its own, which a round trip that failed (the pool reset the stream, or
// closed the connection) does not wait for: it may still be reading the
// body when the attempt asks what the pool may have received (see
// attemptState.unsent). net/http's transports, which poolTransport hands
// the embedded bytes.Reader itself, return from a failed round trip only
// once done with it.
type bodyReader struct {
	bytes.Reader
	// mu guards the reader's position and stopped, which tells Read to
	// hand out no more bytes.
	mu      sync.Mutex
	stopped bool
}

// errBodyStopped is what Read returns once the body was stopped: the
// attempt has counted what was left of it as never sent.
var errBodyStopped = errors.New("the request's body was stopped: the attempt already counted the rest as never sent")

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return 0, errBodyStopped
	}
	return b.Reader.Read(p)
}

func (*bodyReader) Close() error { return nil }

// stop ends the reading of b and returns how many of its bytes no read
// took: a transport still reading it gets errBodyStopped from then on,
// so that bytes counted here as never sent never are. A byte a read took
// may have been sent, even when the transport then failed to write it.
func (b *bodyReader) stop() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	return b.Reader.Len()
}

// stoppableBody is a request body that reads an attempt's body through
// its guard and nothing else (bodyReader's other methods, which it
// embeds from bytes.Reader, do not take the guard): the body of a
// request to a pool that speaks HTTP/3 (see http3PoolTransport). A
// pointer in all, it goes in a request's Body without an allocation.
type stoppableBody struct{ b *bodyReader }

func (s stoppableBody) Read(p []byte) (int, error) { return s.b.Read(p) }
func (stoppableBody) Close() error                 { return nil }
