package daemon

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A guest can make the daemon log a line at will: by replacing its
// program in a loop (proc_exec), sending handles a policy refuses,
// reconnecting to its supervisor and sending garbage. Unlimited, one
// guest logged thousands of lines a second, drowning every other line
// (and journald's rate limit drops those of the whole service). So the
// lines a guest's own doing causes go through a per-guest limit: a burst
// of logBurst lines, then one every logEvery. A line that passes after
// some were dropped says how many ("suppressed"), and so does the
// guest's "guest exited" line. Trace and debug lines, which an operator
// asks for, are not limited.
const (
	logBurst = 50
	logEvery = time.Second
)

// lineBucket is one guest's allowance of log lines, shared by every
// logger derived from its limitedLogger.
// It is kept small, one per guest: an idle guest's every byte counts.
type lineBucket struct {
	mu         sync.Mutex
	tokens     float32
	last       int64 // unix nanoseconds of the last line asked for; 0 before
	suppressed int32 // since the last line that passed
	total      int32 // in all
}

// take says whether a line may be logged now, and how many were dropped
// since the last that was.
func (b *lineBucket) take(now time.Time) (ok bool, dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := now.UnixNano()
	if b.last == 0 {
		b.tokens = logBurst
	} else {
		b.tokens = min(logBurst, b.tokens+float32(t-b.last)/float32(logEvery))
	}
	b.last = t
	if b.tokens < 1 {
		b.suppressed++
		b.total++
		return false, 0
	}
	b.tokens--
	dropped, b.suppressed = int(b.suppressed), 0
	return true, dropped
}

// dropped is how many lines were dropped in all.
func (b *lineBucket) dropped() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.total)
}

// limitedLogger is an hclog.Logger whose info, warn and error lines
// draw on a lineBucket.
type limitedLogger struct {
	hclog.Logger
	b *lineBucket
}

func (l *limitedLogger) Log(level hclog.Level, msg string, args ...any) {
	if level > hclog.Debug {
		ok, dropped := l.b.take(time.Now())
		if !ok {
			return
		}
		if dropped > 0 {
			args = append(args, "suppressed", dropped)
		}
	}
	l.Logger.Log(level, msg, args...)
}

func (l *limitedLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *limitedLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *limitedLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *limitedLogger) With(args ...any) hclog.Logger {
	return &limitedLogger{Logger: l.Logger.With(args...), b: l.b}
}

func (l *limitedLogger) Named(name string) hclog.Logger {
	return &limitedLogger{Logger: l.Logger.Named(name), b: l.b}
}

func (l *limitedLogger) ResetNamed(name string) hclog.Logger {
	return &limitedLogger{Logger: l.Logger.ResetNamed(name), b: l.b}
}
