package client

import "time"

// SetAfterExitCancel makes Release call f right after it cancels a
// guest's pending wait, until the returned function restores it.
func SetAfterExitCancel(f func()) (restore func()) {
	old := afterExitCancel
	afterExitCancel = f
	return func() { afterExitCancel = old }
}

// SetBeforeFlushWait makes Wait and Kill call f before they wait for a
// guest's output to reach its writers, until the returned function
// restores it.
func SetBeforeFlushWait(f func()) (restore func()) {
	old := beforeFlushWait
	beforeFlushWait = f
	return func() { beforeFlushWait = old }
}

// SetAfterLaunchGivenUp makes Launch call f once it has given up waiting
// for the daemon, before it gives up the guest's pending wait, until the
// returned function restores it.
func SetAfterLaunchGivenUp(f func()) (restore func()) {
	old := afterLaunchGivenUp
	afterLaunchGivenUp = f
	return func() { afterLaunchGivenUp = old }
}

// SetGuestsPage makes Guests fetch n guests a page, until the returned
// function restores the page size.
func SetGuestsPage(n uint32) (restore func()) {
	old := guestsPage
	guestsPage = n
	return func() { guestsPage = old }
}

// SetDialTimeout makes Dial wait d for the daemon when its context has no
// deadline, until the returned function restores DefaultDialTimeout.
func SetDialTimeout(d time.Duration) (restore func()) {
	old := dialTimeout
	dialTimeout = d
	return func() { dialTimeout = old }
}

// StdinWaiting is how many writes of g's streamed stdin wait for the guest
// to read what was sent before them.
func StdinWaiting(g *Guest) int {
	if g.stdin == nil {
		return 0
	}
	return int(g.stdin.waiting.Load())
}
