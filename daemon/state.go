package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sandboxd/sandboxd/abi"
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
// run), or if a symbolic link on its path belongs to another user than the
// daemon's or root. The directory is kept as its links led when it was
// checked.
func OpenState(dir string) (*State, error) {
	if dir == "" {
		return nil, errors.New("state: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	// Resolved before anything is made, and kept as resolved: a link on
	// the path changed later does not move the directory.
	if abs, err = ResolveOwnLinks(abs); err != nil {
		return nil, fmt.Errorf("state directory %s: %w: choose another with --state", dir, err)
	}
	if err := abi.CheckAbove(abs); err != nil {
		return nil, fmt.Errorf("state directory %s: %w: choose another with --state", abs, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w: %s", err, stateAdvice())
	}
	if abs, err = ResolveOwnLinks(abs); err != nil {
		return nil, fmt.Errorf("state directory %s: %w: choose another with --state", dir, err)
	}
	fi, err := os.Lstat(abs)
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
		return nil, fmt.Errorf("state directory lock: %w: %s", err, stateAdvice())
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		other, _ := os.ReadFile(lock.Name())
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := "pid " + strings.TrimSpace(string(other))
			if _, perr := strconv.Atoi(strings.TrimSpace(string(other))); perr != nil {
				// Its pid was not written (a full disk), or it was
				// killed before it wrote it.
				pid = "pid unknown: fuser " + lock.Name() + " names it"
			}
			return nil, fmt.Errorf("state directory %s is in use by another sandboxd (%s): stop it, or choose another with --state", abs, pid)
		}
		return nil, fmt.Errorf("locking state directory %s: %w: %s", abs, err, stateAdvice())
	}
	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s := &State{Dir: abs, lock: lock}
	if err := os.MkdirAll(s.CacheDir(), 0o700); err != nil {
		s.Close()
		return nil, fmt.Errorf("creating compilation cache: %w: %s", err, stateAdvice())
	}
	return s, nil
}

// stateAdvice is what to do about a state directory the daemon cannot
// make, lock or write in (a read-only file system, another user's
// directory).
func stateAdvice() string {
	return fmt.Sprintf("choose another with --state, on a writable file system where the daemon's user (uid %d) may create it", os.Geteuid())
}

// ResolveOwnLinks is the absolute path abs with every symbolic link on it
// resolved, the part that does not exist yet kept as written. It fails at
// a link that belongs to a user other than root and the daemon's: that
// user could point it anywhere, and repoint it later. The daemon's state
// directory and control socket are found through it.
func ResolveOwnLinks(abs string) (string, error) {
	done, todo := "/", strings.Split(abs, "/")
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		p := filepath.Join(done, name)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return filepath.Join(append([]string{p}, todo...)...), nil
		case err != nil:
			return "", err
		case fi.Mode()&os.ModeSymlink == 0:
			done = p
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return "", fmt.Errorf("%s is a symbolic link of uid %d, not of the daemon's uid %d or root", p, st.Uid, os.Geteuid())
		}
		target, err := os.Readlink(p)
		if links++; err == nil && links > 40 {
			err = syscall.ELOOP
		}
		if err != nil {
			return "", fmt.Errorf("cannot resolve the link %s: %w", p, err)
		}
		if filepath.IsAbs(target) {
			done = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return done, nil
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
