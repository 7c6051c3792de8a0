package issuance

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The time a job waits for the run does not count against its deadline.
func TestTurnClock(t *testing.T) {
	c := newTurnClock(context.Background(), 100*time.Millisecond)
	defer c.cancel()
	time.Sleep(60 * time.Millisecond)
	c.pause()
	time.Sleep(100 * time.Millisecond)
	if c.Err() != nil {
		t.Fatal("ended while paused")
	}
	c.resume()
	select {
	case <-c.Done():
		t.Fatal("ended before its time was used")
	case <-time.After(20 * time.Millisecond):
	}
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		t.Fatal("did not end")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("err %v", c.Err())
	}
	// Children see the deadline as theirs.
	child, cancel := context.WithCancel(c)
	defer cancel()
	<-child.Done()
	if !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("child err %v", child.Err())
	}

	parent, stop := context.WithCancel(context.Background())
	c2 := newTurnClock(parent, time.Hour)
	stop()
	<-c2.Done()
	if !errors.Is(c2.Err(), context.Canceled) {
		t.Errorf("parent cancelled: %v", c2.Err())
	}
}
