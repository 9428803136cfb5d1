package abi

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// The rights in the call tables (Call.Rights) are what docs/ABI.md,
// docs/WASI.md and `sandboxd abi` say each call needs. These tests hold
// every handler to its entries by calling it: for each Need, on handles
// that hold everything but one of its rights the call fails with
// ENOTCAPABLE, and on handles that hold exactly what the entries ask for
// under that Need's condition it gets past the check.

// rightsCase says how to call one handler so that its rights checks are
// what decides.
type rightsCase struct {
	// res is what each handle passed designates: "file", "dir", "chan",
	// "listen" or "process"; resWhen does so under one Need's condition.
	// Every handle is non-blocking, so that a call that gets past its
	// checks returns at once.
	res     string
	resWhen map[string]string
	// handles names the handle parameters of a call whose entry lists no
	// rights: the test holds it to needing none. A call with entries is
	// passed handles where they say.
	handles []string
	// set gives parameters their values; when does so under one Need's
	// condition. Other pointers point at zeroed memory (path parameters
	// at "x"), and other integers are 0.
	set  map[string]uint64
	when map[string]map[string]uint64
	// poll, for poll and poll_oneoff, writes the subscriptions and reads
	// back the event of the handle under test.
	poll *pollLayout
}

var nativeRightsCases = map[string]rightsCase{
	"fd_close":    {res: "file", handles: []string{"fd"}},
	"fd_datasync": {res: "file"},
	"fd_dup":      {res: "file", handles: []string{"from"}},
	"fd_pread":    {res: "file"},
	"fd_pwrite":   {res: "file"},
	"fd_read":     {res: "file"},
	"fd_replace":  {res: "file", handles: []string{"from", "to"}},
	"fd_seek": {res: "file", when: map[string]map[string]uint64{
		"for whence=cur, offset=0": {"whence": whenceCur},
		"otherwise":                {"whence": whenceSet},
	}},
	"fd_stat_get": {res: "file", handles: []string{"fd"}},
	"fd_stat_put": {res: "file", when: map[string]map[string]uint64{
		"for FLAGS":  {"flags": fdstatFlags},
		"for RIGHTS": {"flags": fdstatRights},
	}},
	"fd_sync":       {res: "file"},
	"fd_write":      {res: "file"},
	"file_advise":   {res: "file"},
	"file_allocate": {res: "file"},
	"file_create":   {res: "dir", set: map[string]uint64{"type": filetypeDirectory}},
	"file_link":     {res: "dir"},
	"file_open": {res: "dir", when: map[string]map[string]uint64{
		"with CREAT": {"oflags": oflagCreat},
		"with TRUNC": {"oflags": oflagTrunc},
	}},
	"file_readdir":   {res: "dir"},
	"file_readlink":  {res: "dir"},
	"file_rename":    {res: "dir"},
	"file_stat_fget": {res: "file"},
	"file_stat_fput": {res: "file", when: map[string]map[string]uint64{
		"for SIZE":  {"flags": fsSize},
		"for times": {"flags": fsAtimNow},
	}},
	"file_stat_get": {res: "dir"},
	"file_stat_put": {res: "dir", set: map[string]uint64{"flags": fsAtimNow}},
	"file_symlink":  {res: "dir"},
	"file_unlink":   {res: "dir"},
	"sock_accept":   {res: "listen"},
	"cap_revocable": {res: "file", handles: []string{"fd"}},
	"fd_describe":   {res: "file", handles: []string{"fd"}},
	"poll": {res: "chan", resWhen: map[string]string{"for proc_terminate events": "process", "for fd_read events on a listener or dialer": "listen"},
		poll: &nativePoll},
	"proc_exec":     {res: "file"},
	"proc_spawn":    {res: "file"},
	"sock_recv":     {res: "chan"},
	"sock_send":     {res: "chan"},
	"sock_shutdown": {res: "chan", set: map[string]uint64{"how": shutRD}},
}

var wasiRightsCases = map[string]rightsCase{
	"fd_advise":             {res: "file"},
	"fd_allocate":           {res: "file"},
	"fd_close":              {res: "file", handles: []string{"fd"}},
	"fd_datasync":           {res: "file"},
	"fd_fdstat_get":         {res: "file", handles: []string{"fd"}},
	"fd_fdstat_set_flags":   {res: "file"},
	"fd_fdstat_set_rights":  {res: "file", handles: []string{"fd"}},
	"fd_filestat_get":       {res: "file"},
	"fd_filestat_set_size":  {res: "file"},
	"fd_filestat_set_times": {res: "file"},
	"fd_pread":              {res: "file"},
	"fd_pwrite":             {res: "file"},
	"fd_read":               {res: "file"},
	"fd_readdir":            {res: "dir"},
	"fd_renumber":           {res: "file", handles: []string{"fd", "to"}},
	"fd_seek": {res: "file", when: map[string]map[string]uint64{
		"for whence=cur, offset=0": {"whence": io.SeekCurrent},
		"otherwise":                {"whence": io.SeekStart},
	}},
	"fd_sync":                 {res: "file"},
	"fd_tell":                 {res: "file"},
	"fd_write":                {res: "file"},
	"path_create_directory":   {res: "dir"},
	"path_filestat_get":       {res: "dir"},
	"path_filestat_set_times": {res: "dir"},
	"path_link":               {res: "dir"},
	"path_open": {res: "dir", when: map[string]map[string]uint64{
		"with CREAT": {"oflags": oflagCreat},
		"with TRUNC": {"oflags": oflagTrunc},
	}},
	"path_readlink":         {res: "dir"},
	"path_remove_directory": {res: "dir"},
	"path_rename":           {res: "dir"},
	"path_symlink":          {res: "dir"},
	"path_unlink_file":      {res: "dir"},
	"poll_oneoff":           {res: "chan", poll: &wasiPoll},
	"sock_accept":           {res: "listen"},
	"sock_recv":             {res: "chan"},
	"sock_send":             {res: "chan"},
	"sock_shutdown":         {res: "chan", set: map[string]uint64{"how": shutRD}},
}

// pollLayout writes the subscriptions of one ABI's poll: one on the handle
// under test (userdata 1), of the type a Need's condition names, and a
// clock (userdata 2) that expires at once, so that the call returns.
type pollLayout struct {
	subSize, evSize uint32
	encode          func(b []byte, when string, fd uint32)
}

var nativePoll = pollLayout{subscriptionSize, eventSize, func(b []byte, when string, fd uint32) {
	typ := map[string]uint8{"for fd_read events": eventtypeFDRead, "for fd_write events": eventtypeFDWrite,
		"for fd_read events on a listener or dialer": eventtypeFDRead, "for proc_terminate events": eventtypeProcTerminate}[when]
	binary.LittleEndian.PutUint64(b[0:], 1)
	b[10] = typ
	binary.LittleEndian.PutUint32(b[16:], fd)
	c := b[subscriptionSize:]
	binary.LittleEndian.PutUint64(c[0:], 2)
	c[10] = eventtypeClock
	binary.LittleEndian.PutUint32(c[24:], clockMonotonic)
}}

var wasiPoll = pollLayout{wasiSubscriptionSize, wasiEventSize, func(b []byte, when string, fd uint32) {
	typ := map[string]uint8{"for fd_read events": wasiEventtypeFDRead, "for fd_write events": wasiEventtypeFDWrite}[when]
	binary.LittleEndian.PutUint64(b[0:], 1)
	b[8] = typ
	binary.LittleEndian.PutUint32(b[16:], fd)
	c := b[wasiSubscriptionSize:]
	binary.LittleEndian.PutUint64(c[0:], 2)
	c[8] = wasiEventtypeClock
	binary.LittleEndian.PutUint32(c[16:], 1) // monotonic
}}

func TestHandlersCheckTheirTableRights(t *testing.T) {
	env := newFuzzEnv(t)
	for _, abi := range []struct {
		name  string
		table []Call
		cases map[string]rightsCase
	}{{"native", calls[:], nativeRightsCases}, {"wasi", wasiCalls[:], wasiRightsCases}} {
		for i := range abi.table {
			c := &abi.table[i]
			rc, ok := abi.cases[c.Name]
			if !ok {
				if len(c.Rights) > 0 {
					t.Errorf("%s %s: the table lists rights, and no case here calls it", abi.name, c.Name)
				}
				continue
			}
			t.Run(abi.name+"/"+c.Name, func(t *testing.T) {
				r := &rightsRun{t: t, env: env, c: c, rc: rc}
				if len(c.Rights) == 0 {
					r.expectPast("", r.grant(""))
					return
				}
				for _, n := range c.Rights {
					r.checkNeed(n)
				}
			})
		}
	}
}

// rightsRun calls one handler under test.
type rightsRun struct {
	t   *testing.T
	env *fuzzEnv
	c   *Call
	rc  rightsCase
}

// handleRights are the rights given to the handle passed in one parameter.
type handleRights struct{ base, inheriting caps.Rights }

// grant returns the rights the entries ask for under when: those of every
// Need made on every call and of those made under when, with the first
// right of an AnyOf Need.
func (r *rightsRun) grant(when string) map[string]handleRights {
	g := map[string]handleRights{}
	for _, p := range r.rc.handles {
		g[p] = handleRights{}
	}
	for _, n := range r.c.Rights {
		if n.When != "" && n.When != when {
			continue
		}
		rights := n.Rights
		if n.AnyOf {
			rights &= -rights
		}
		p, h := r.c.HandleParam(n), g[r.c.HandleParam(n)]
		if n.Inheriting {
			h.inheriting |= rights
		} else {
			h.base |= rights
		}
		g[p] = h
	}
	return g
}

// checkNeed holds the handler to n: without one of n's rights (all of
// them, for AnyOf) it fails with ENOTCAPABLE, and with the entries'
// rights (each of n's alone, for AnyOf) it gets past the check.
func (r *rightsRun) checkNeed(n Need) {
	p := r.c.HandleParam(n)
	bits := splitRights(n.Rights)
	if n.AnyOf {
		for _, b := range bits {
			g := r.grant(n.When)
			h := g[p]
			h.base = h.base&^n.Rights | b
			g[p] = h
			r.expectPast(n.When, g)
		}
		bits = []caps.Rights{n.Rights}
	} else {
		r.expectPast(n.When, r.grant(n.When))
	}
	for _, b := range bits {
		g := r.grant(n.When)
		for q := range g {
			g[q] = handleRights{caps.RightsAll, caps.RightsAll}
		}
		if n.Inheriting {
			g[p] = handleRights{caps.RightsAll, caps.RightsAll &^ b}
		} else {
			g[p] = handleRights{caps.RightsAll &^ b, caps.RightsAll}
		}
		if e := r.call(n.When, g); e != caps.ENOTCAPABLE {
			r.t.Errorf("%s: without %v on %s: %v, want ENOTCAPABLE", condition(n.When), b, p, e)
		}
	}
}

func (r *rightsRun) expectPast(when string, g map[string]handleRights) {
	r.t.Helper()
	if e := r.call(when, g); e == caps.ENOTCAPABLE {
		var held []string
		for p, h := range g {
			held = append(held, fmt.Sprintf("%s: base %v, inheriting %v", p, h.base, h.inheriting))
		}
		sort.Strings(held)
		r.t.Errorf("%s: with %s: ENOTCAPABLE, want the call past its rights checks", condition(when), strings.Join(held, "; "))
	}
}

// condition words a Need's When for a test message.
func condition(when string) string {
	if when == "" {
		return "every call"
	}
	return when
}

func splitRights(r caps.Rights) []caps.Rights {
	var out []caps.Rights
	for ; r != 0; r &= r - 1 {
		out = append(out, r&-r)
	}
	return out
}

// call runs the handler on a fresh guest whose table holds one handle per
// entry of g, with those rights, and returns its errno (for poll, that of
// the event of the handle).
func (r *rightsRun) call(when string, g map[string]handleRights) Errno {
	t := r.t
	t.Helper()
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "rights"}
	tbl := caps.NewTable(k, h, 16)
	defer tbl.CloseAll()
	fds := map[string]uint32{}
	for p, hr := range g {
		c := k.Mint(h, r.resource(when), hr.base, hr.inheriting, p, "test")
		c.SetFlags(caps.FlagNonblock)
		fd, err := tbl.Insert(c)
		if err != nil {
			t.Fatal(err)
		}
		fds[p] = fd
	}
	// HangGuard: every handle is non-blocking and the calls return at
	// once; only a hang could reach this.
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	gst := r.env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "rights", Table: tbl, Args: []string{"rights"}})
	gst.ctx, gst.cancel = context.WithCancelCause(ctx)
	gst.started = time.Now()
	defer gst.cancel(nil)
	m := r.env.mod.Memory()
	clear(mustRead(t, m))
	params := r.params(m, when, fds)
	e, panicked := callHandler(r.c.fn, gst, m, params)
	if panicked != nil {
		t.Fatalf("%s(%v) panicked: %v", r.c.Name, params, panicked)
	}
	if r.rc.poll != nil && e == 0 {
		return pollEventErrno(t, m, r.rc.poll, params)
	}
	return e
}

// Guest memory used by params: pointer parameter i points at
// rightsScratch + i*rightsSlot.
const (
	rightsScratch = 1024
	rightsSlot    = 512
)

func (r *rightsRun) params(m api.Memory, when string, fds map[string]uint32) []uint64 {
	p := make([]uint64, len(r.c.Params))
	for i, prm := range r.c.Params {
		fd, handle := fds[prm.Name]
		v, set := r.value(prm.Name, when)
		isPath := strings.Contains(prm.Name, "path")
		switch {
		case handle:
			p[i] = uint64(fd)
		case set:
			p[i] = v
		case prm.Pointer:
			p[i] = uint64(rightsScratch + i*rightsSlot)
			if isPath {
				m.Write(uint32(p[i]), []byte("x"))
			}
		case isPath && strings.HasSuffix(prm.Name, "_len"):
			p[i] = 1
		}
	}
	if l := r.rc.poll; l != nil {
		b := make([]byte, 2*l.subSize)
		l.encode(b, when, fds[r.c.HandleParam(Need{})])
		m.Write(uint32(p[0]), b)
		p[2] = 2 // nsubscriptions
	}
	return p
}

func (r *rightsRun) value(name, when string) (uint64, bool) {
	if v, ok := r.rc.when[when][name]; ok {
		return v, true
	}
	v, ok := r.rc.set[name]
	return v, ok
}

// pollEventErrno returns the error of the event poll reported for the
// handle under test (userdata 1), or 0 if it reported none.
func pollEventErrno(t *testing.T, m api.Memory, l *pollLayout, params []uint64) Errno {
	out, nOut := uint32(params[1]), uint32(params[3])
	n, _ := m.ReadUint32Le(nOut)
	for i := range n {
		ev, ok := m.Read(out+i*l.evSize, l.evSize)
		if !ok {
			t.Fatal("events out of memory")
		}
		if binary.LittleEndian.Uint64(ev) == 1 {
			return Errno(binary.LittleEndian.Uint16(ev[8:]))
		}
	}
	return 0
}

// resource makes what a handle designates, in a fresh directory holding a
// file "f".
func (r *rightsRun) resource(when string) caps.Resource {
	t := r.t
	kind := r.rc.res
	if k, ok := r.rc.resWhen[when]; ok {
		kind = k
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "file":
		f, err := os.OpenFile(filepath.Join(dir, "f"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		return caps.NewFile(f, "f")
	case "dir":
		d, err := caps.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	case "chan":
		a, b := caps.NewChannelPair(false, "test")
		t.Cleanup(func() { b.Close() })
		return a
	case "listen":
		nl, err := net.Listen("unix", filepath.Join(dir, "s"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := caps.NewListener(nl, "test")
		if err != nil {
			t.Fatal(err)
		}
		return l
	case "process":
		child := r.env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "child", Table: caps.NewTable(caps.NewKernel(nil), &caps.Holder{ID: "child"}, 1)})
		t.Cleanup(child.Abandon)
		return &process{g: child}
	}
	t.Fatalf("no resource %q", kind)
	return nil
}
