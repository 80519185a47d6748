package caddymodule

import (
	"sync"
	"sync/atomic"
)

// closeWhenDrained runs close once, when whoever owns it is released
// and no request holds it any longer: a reload cleans the old config up
// while its requests are still in flight, and those still use its store
// and its pools' connections.
type closeWhenDrained struct {
	close    func() error // set before the first release; nil: nothing to close
	requests atomic.Int64
	released atomic.Bool
	once     sync.Once
	err      error
}

// hold keeps it open for a request until the request calls unhold.
func (c *closeWhenDrained) hold() { c.requests.Add(1) }

func (c *closeWhenDrained) unhold() {
	if c.requests.Add(-1) == 0 && c.released.Load() {
		_ = c.closeNow()
	}
}

// release closes it now if no request holds it, else once the last
// lets go (its error is then dropped).
func (c *closeWhenDrained) release() error {
	c.released.Store(true)
	if c.requests.Load() == 0 {
		return c.closeNow()
	}
	return nil
}

func (c *closeWhenDrained) closeNow() error {
	c.once.Do(func() {
		if c.close != nil {
			c.err = c.close()
		}
	})
	return c.err
}
