package sandboxd

import (
	"errors"
	"sort"

	"github.com/sandboxd/sandboxd/abi/argdata"
)

// Startup is what a guest was started with: the argdata tree the
// supervisor (or the parent guest that spawned it) built,
//
//	{"args": ["prog", …], "env": {"K": "V", …}, "handles": {"name": fd, …}}
type Startup struct {
	Args    []string
	Env     map[string]string
	Handles map[string]uint32
	// Tree is the whole decoded argdata, for keys beyond these three.
	Tree argdata.Value
}

// ParseStartup decodes a guest's startup argdata. Members of the wrong
// type are left out rather than failing the whole startup.
func ParseStartup(b []byte) (Startup, error) {
	st := Startup{Env: map[string]string{}, Handles: map[string]uint32{}}
	v, err := argdata.Decode(b)
	if err != nil {
		return st, err
	}
	if v.Type() != argdata.TypeMap && !v.IsNull() {
		return st, errors.New("sandboxd: startup argdata is not a map")
	}
	st.Tree = v
	if a, ok := v.Get("args"); ok {
		for _, it := range a.Items() {
			if s, ok := it.Str(); ok {
				st.Args = append(st.Args, s)
			}
		}
	}
	if e, ok := v.Get("env"); ok {
		e.Pairs(func(k, val argdata.Value) bool {
			ks, ok1 := k.Str()
			vs, ok2 := val.Str()
			if ok1 && ok2 {
				st.Env[ks] = vs
			}
			return true
		})
	}
	if h, ok := v.Get("handles"); ok {
		h.Pairs(func(k, val argdata.Value) bool {
			ks, ok1 := k.Str()
			fd, ok2 := val.Fd()
			if ok1 && ok2 {
				st.Handles[ks] = fd
			}
			return true
		})
	}
	return st, nil
}

// SpawnConfig describes a child guest: its arguments, environment and the
// handles it gets, by name. The child's table holds this guest's stdin,
// stdout and stderr at 0–2, then each named handle in name order; its
// startup argdata names them all, so the child finds them with Handle. A
// handle named "stdin", "stdout" or "stderr" takes that stream's place
// at 0–2 (the child's standard output can be a channel end, say), unless
// NoStdio leaves the streams out, when it is a named handle like others.
type SpawnConfig struct {
	Args    []string
	Env     map[string]string
	Handles map[string]uint32
	// NoStdio leaves stdin, stdout and stderr out of the child's table.
	NoStdio bool
}

// encode returns the child's argdata and the list of this guest's fds to
// give it, in the order the child will number them from 0.
func (c SpawnConfig) encode() ([]byte, []uint32) {
	var fds []uint32
	hm := map[string]argdata.Value{}
	stdio := map[string]bool{}
	if !c.NoStdio {
		for i, n := range []string{"stdin", "stdout", "stderr"} {
			fd, given := c.Handles[n]
			if !given {
				fd = uint32(i)
			}
			stdio[n] = true
			fds = append(fds, fd)
			hm[n] = argdata.Fd(uint32(i))
		}
	}
	names := make([]string, 0, len(c.Handles))
	for n := range c.Handles {
		if !stdio[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		hm[n] = argdata.Fd(uint32(len(fds)))
		fds = append(fds, c.Handles[n])
	}
	as := make([]argdata.Value, len(c.Args))
	for i, a := range c.Args {
		as[i] = argdata.String(a)
	}
	em := map[string]argdata.Value{}
	for k, v := range c.Env {
		em[k] = argdata.String(v)
	}
	return argdata.StringMap(map[string]argdata.Value{
		"args":    argdata.Seq(as...),
		"env":     argdata.StringMap(em),
		"handles": argdata.StringMap(hm),
	}).Encode(), fds
}

// Description is what fd_describe reports about the capability behind a
// handle. It never includes the host object (a host path or address).
type Description struct {
	ID         string // public capability id
	Kind       string // "dir", "file", "stdio", "chan", "sock", "listen", "process", "revoker", …
	Name       string // the name the holder knows it by, or ""
	Base       Rights
	Inheriting Rights
	Edge       string // how it was made: grant, open, dup, delegate, spawn, revocable, accept, create
	Parent     string // the capability it was derived from, or ""
	Origin     string // what authorised a root capability (the grant), or ""
	Holder     string // the guest holding it
}

// ParseDescription decodes fd_describe's argdata map.
func ParseDescription(b []byte) (Description, error) {
	v, err := argdata.Decode(b)
	if err != nil {
		return Description{}, err
	}
	if v.Type() != argdata.TypeMap {
		return Description{}, errors.New("sandboxd: description is not a map")
	}
	str := func(k string) string {
		x, _ := v.Get(k)
		s, _ := x.Str()
		return s
	}
	num := func(k string) Rights {
		x, _ := v.Get(k)
		i, _ := x.Int()
		return Rights(i)
	}
	return Description{
		ID: str("id"), Kind: str("kind"), Name: str("name"),
		Base: num("rights_base"), Inheriting: num("rights_inheriting"),
		Edge: str("edge"), Parent: str("parent"), Origin: str("origin"), Holder: str("holder"),
	}, nil
}
