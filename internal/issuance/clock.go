package issuance

import (
	"context"
	"sync"
	"time"
)

// turnClock is a job's context in a run that shares solver workloads:
// it ends Timeout after the job's turn came, like context.WithTimeout,
// except that the time the job spends waiting for the run (the other
// orders to be placed, a turn at the CA again) does not count. So each
// certificate keeps its whole --timeout for its own work, as when every
// job ran start to end in its turn.
type turnClock struct {
	parent context.Context
	done   chan struct{}
	stop   func() bool

	mu    sync.Mutex
	err   error
	left  time.Duration
	since time.Time // when the clock last resumed; zero while paused
	timer *time.Timer
}

var _ context.Context = (*turnClock)(nil)

func newTurnClock(parent context.Context, d time.Duration) *turnClock {
	c := &turnClock{parent: parent, done: make(chan struct{}), left: d}
	c.stop = context.AfterFunc(parent, func() { c.end(parent.Err()) })
	c.resume()
	return c
}

func (c *turnClock) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		return time.Now().Add(c.left), true
	}
	return c.since.Add(c.left), true
}

func (c *turnClock) Done() <-chan struct{} { return c.done }

func (c *turnClock) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *turnClock) Value(key any) any { return c.parent.Value(key) }

func (c *turnClock) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.timer != nil {
		c.timer.Stop()
	}
	close(c.done)
}

// pause stops the clock; resume starts it again with the time left.
func (c *turnClock) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.since.IsZero() {
		return
	}
	if c.timer.Stop() {
		c.left -= time.Since(c.since)
	}
	c.since = time.Time{}
}

func (c *turnClock) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || !c.since.IsZero() {
		return
	}
	c.since = time.Now()
	c.timer = time.AfterFunc(c.left, func() { c.end(context.DeadlineExceeded) })
}

// cancel ends the clock, as a context.CancelFunc does.
func (c *turnClock) cancel() {
	c.stop()
	c.end(context.Canceled)
}
