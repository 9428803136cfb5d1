// Package ctxtest counts the contexts attached to a parent context, for
// tests that hold code to releasing every context it derives.
package ctxtest

import (
	"context"
	"sync"
	"sync/atomic"
)

// Children stands in for a parent context and counts the contexts derived
// from it that are still attached to it. A context derived from a parent
// with an AfterFunc method registers through that method and detaches
// through the stop func it returns once it is cancelled (package context,
// propagateCancel), so the count is exact and needs no garbage collection
// or timing. Only direct children are counted.
type Children struct {
	context.Context
	done chan struct{} // not the parent's: else children attach to it directly
	live atomic.Int64
}

// Count returns a context that ends with parent and counts its children.
func Count(parent context.Context) *Children {
	c := &Children{Context: parent, done: make(chan struct{})}
	context.AfterFunc(parent, func() { close(c.done) })
	return c
}

// Live is how many contexts derived from c have not been cancelled.
func (c *Children) Live() int64 { return c.live.Load() }

// Done is closed once the parent is done.
func (c *Children) Done() <-chan struct{} { return c.done }

// AfterFunc is how package context attaches a child to c.
func (c *Children) AfterFunc(f func()) (stop func() bool) {
	c.live.Add(1)
	stopParent := context.AfterFunc(c.Context, f)
	var once sync.Once
	return func() bool {
		once.Do(func() { c.live.Add(-1) })
		return stopParent()
	}
}
