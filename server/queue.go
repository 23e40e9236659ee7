package server

import (
	"context"
	"sync"
	"time"

	"github.com/isol8/isol8/api"
)

// Texts of the queue's refusals.
const (
	textQueueFull    = "Server is busy: the execution queue is full. Retry later."
	textQueueTimeout = "Timed out waiting for an execution slot"
)

// queue is the server's global limit on concurrent executions with a
// bounded, FIFO wait in front of it (blocked channel senders are served in
// order).
type queue struct {
	slots   chan struct{}
	timeout time.Duration
	max     int

	mu      sync.Mutex
	waiting int
}

func newQueue(concurrent, maxQueue int, timeout time.Duration) *queue {
	return &queue{slots: make(chan struct{}, max(concurrent, 1)), max: maxQueue, timeout: timeout}
}

// acquire takes a slot: at once when one is free, else after waiting in
// the queue. A full queue is an Exhausted error (429), a wait past the
// queue timeout a Deadline error (408).
func (q *queue) acquire(ctx context.Context) (func(), error) {
	release := func() { <-q.slots }
	select {
	case q.slots <- struct{}{}:
		return release, nil
	default:
	}
	q.mu.Lock()
	if q.waiting >= q.max {
		q.mu.Unlock()
		return nil, api.Exhaustedf("%s", textQueueFull)
	}
	q.waiting++
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.waiting--
		q.mu.Unlock()
	}()
	t := time.NewTimer(q.timeout)
	defer t.Stop()
	select {
	case q.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, api.Deadline(errorString(textQueueTimeout))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// depth reports the executions waiting and running.
func (q *queue) depth() (waiting, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting, len(q.slots)
}

type errorString string

func (e errorString) Error() string { return string(e) }
