package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// State is the daemon's directory of what outlives one run:
//
//	STATE/lock    held (flock) while a daemon uses the directory; holds its pid
//	STATE/cache/  wazero's compilation cache: machine code of every module
//	              compiled, so a restarted daemon does not compile again
//	STATE/audit.jsonl, audit.jsonl.1, …
//	              the audit log (package audit, docs/AUDIT.md)
//
// Guests, their output and the capability graph live in memory and end
// with the daemon; the audit log records them.
type State struct {
	Dir  string
	lock *os.File
}

// DefaultStateDir is /var/lib/sandboxd for root, and
// $XDG_STATE_HOME/sandboxd (~/.local/state/sandboxd) for other users.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/sandboxd"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sandboxd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "sandboxd")
	}
	return filepath.Join(os.TempDir(), "sandboxd-state-"+strconv.Itoa(os.Geteuid()))
}

// OpenState creates dir if needed (mode 0700) and locks it for this
// process. It fails if another daemon holds the lock, or if dir is
// writable by other users (they could plant compiled code the daemon would
// run).
func OpenState(dir string) (*State, error) {
	if dir == "" {
		return nil, errors.New("state: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("state directory %s is writable by other users (mode %v): chmod go-w it, or choose another with --state", abs, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("state directory %s belongs to uid %d, not to the daemon's uid %d: chown it, or choose another with --state", abs, st.Uid, os.Geteuid())
	}
	lock, err := os.OpenFile(filepath.Join(abs, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		other, _ := os.ReadFile(lock.Name())
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another sandboxd (pid %s): stop it, or choose another with --state", abs, strings.TrimSpace(string(other)))
		}
		return nil, fmt.Errorf("locking state directory %s: %w", abs, err)
	}
	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s := &State{Dir: abs, lock: lock}
	if err := os.MkdirAll(s.CacheDir(), 0o700); err != nil {
		s.Close()
		return nil, fmt.Errorf("creating compilation cache: %w", err)
	}
	return s, nil
}

// CacheDir is where compiled modules are kept.
func (s *State) CacheDir() string { return filepath.Join(s.Dir, "cache") }

// AuditLogName is the audit log's file in a state directory.
const AuditLogName = "audit.jsonl"

// AuditPath is the daemon's audit log.
func (s *State) AuditPath() string { return filepath.Join(s.Dir, AuditLogName) }

// Close releases the lock.
func (s *State) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing drops the flock
	s.lock = nil
	return err
}
