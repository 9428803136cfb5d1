package caps

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrProtectedSocket is why a SocketPath refuses to connect to a socket
// file ProtectSocket named: the daemon's own control socket, say, which
// a connection made for a guest would reach with the daemon's own
// credentials (the control API trusts the peer's uid).
var ErrProtectedSocket = errors.New("it is the daemon's own control socket, which no grant may reach")

// fileID is a file as the kernel knows it, whatever path leads to it
// (links, hard links, bind mounts).
type fileID struct{ dev, ino uint64 }

var protectedSockets struct {
	sync.RWMutex
	files map[fileID]int // the number of ProtectSocket calls not released
}

// ProtectSocket makes every Dial of a SocketPath, from now until release
// is called, refuse the socket file at path as it is now, by its device
// and inode: no path, link or hard link leads a connection to it. The
// daemon protects its control socket once it is bound.
func ProtectSocket(path string) (release func(), err error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, err
	}
	id := fileID{dev: st.Dev, ino: st.Ino}
	p := &protectedSockets
	p.Lock()
	if p.files == nil {
		p.files = map[fileID]int{}
	}
	p.files[id]++
	p.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.Lock()
			if p.files[id]--; p.files[id] <= 0 {
				delete(p.files, id)
			}
			p.Unlock()
		})
	}, nil
}

// protected reports whether fd, a socket file opened O_PATH, is one
// ProtectSocket protects. A file that cannot be stat'ed is refused too.
func protected(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return true
	}
	p := &protectedSockets
	p.RLock()
	defer p.RUnlock()
	return p.files[fileID{dev: st.Dev, ino: st.Ino}] > 0
}
