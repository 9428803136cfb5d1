package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/client"
)

// capsJSON returns `caps ID --json`'s handles by capability name.
func (d *daemonProc) capsJSON(t *testing.T, id string) map[string]client.Handle {
	t.Helper()
	r := d.cli(t, "caps", id, "--json")
	if r.code != 0 {
		t.Fatalf("caps %s --json: %d %s", id, r.code, r.stderr)
	}
	out := map[string]client.Handle{}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var h client.Handle
		if err := dec.Decode(&h); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("caps --json output %q: %v", r.stdout, err)
		}
		out[h.Cap.Name] = h
	}
}

// launchSpin launches a guest that spins until killed, with grants.
func (d *daemonProc) launchSpin(t *testing.T, grants ...string) string {
	t.Helper()
	args := []string{"--detach"}
	for _, g := range grants {
		args = append(args, "--grant", g)
	}
	r := d.cli(t, "launch", append(args, guest(t, "daemon/testdata/guests/spin.wat"))...)
	if r.code != 0 {
		t.Fatalf("launch %v: code %d, stderr %q", grants, r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// A cap: grant names the handle after the capability unless it says
// otherwise, :ro and :rights= narrow the copy, and caps shows the grant
// text that made each copy as its origin; at launch and to a running
// guest alike.
func TestCapGrantsTakeTheCapabilitysNameNarrowAndShowTheirOrigin(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	file := filepath.Join(privateDir(t), "ticks")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a := d.launchSpin(t, "file:"+file)
	from := d.capsJSON(t, a)["ticks"].Cap
	if from.ID == "" || !strings.Contains(from.Rights, "fd_write") {
		t.Fatalf("the granted file in caps %s: %+v", a, from)
	}
	b := d.launchSpin(t, "cap:"+from.ID, "cap:"+from.ID+"=log:ro", "cap:"+from.ID+"=w:rights=fd_write,fd_seek")
	got := d.capsJSON(t, b)
	want := map[string]struct{ rights, origin string }{
		"ticks": {from.Rights, "cap:" + from.ID},
		"log":   {"fd_read|fd_seek|fd_tell|fd_stat_put_flags|file_advise|file_stat_fget|poll_fd_readwrite|mem_map|mem_map_exec", "cap:" + from.ID + "=log:ro"},
		"w":     {"fd_seek|fd_write", "cap:" + from.ID + "=w:rights=fd_seek,fd_write"},
	}
	for name, w := range want {
		h, ok := got[name]
		if !ok || h.Cap.Parent != from.ID || h.Cap.Edge != "delegate" || h.Cap.Origin != w.origin {
			t.Errorf("caps %s: handle %q = %+v, want a delegation of %s with origin %q", b, name, h.Cap, from.ID, w.origin)
		}
		if name != "log" && h.Cap.Rights != w.rights {
			t.Errorf("handle %q has rights %s, want %s", name, h.Cap.Rights, w.rights)
		}
	}
	if r := got["log"].Cap.Rights; strings.Contains(r, "fd_write") || !strings.Contains(r, "fd_read") {
		t.Errorf("the :ro copy has rights %s: want fd_read and no fd_write", r)
	}
	if r := d.cli(t, "caps", b); !strings.Contains(r.stdout, "cap:"+from.ID+"=log:ro") {
		t.Errorf("caps %s does not show the origin of the :ro copy:\n%s", b, r.stdout)
	}
	if r := d.cli(t, "grant", b, "--grant", "cap:"+from.ID+"=late:ro"); r.code != 0 || !strings.Contains(r.stdout, "\tlate\t") || strings.Contains(r.stdout, "fd_write") {
		t.Fatalf("grant of a narrowed cap: to a running guest: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := d.cli(t, "launch", "--grant", "cap:"+from.ID+":rights=fd_bogus", guest(t, "daemon/testdata/guests/spin.wat")); r.code != exitUsage || !strings.Contains(r.stderr, `unknown right "fd_bogus"`) {
		t.Fatalf("launch with an unknown right: code %d, stderr %q", r.code, r.stderr)
	}
}

// A grant ending in a mistyped option is a usage error that names the
// options there are, under run and launch alike.
func TestGrantWithAMistypedOptionSaysWhichOptionsThereAre(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	hello := guest(t, "abi/testdata/guests/hello.wat")
	cases := []struct{ grant, says string }{
		{"dir:" + dir + ":rw", `unknown option ":rw": :ro (read-only) is the only option of dir: grants`},
		{"dir:" + dir + ":RO", `unknown option ":RO": options are lower case: write :ro`},
		{"dir:" + dir + "=data:RO", `write :ro`},
	}
	for _, c := range cases {
		r := sandboxd(t, "", "run", "--grant", c.grant, hello)
		if r.code != exitUsage {
			t.Errorf("run --grant %s: code %d, want %d", c.grant, r.code, exitUsage)
		}
		oneLine(t, r.stderr, c.says)
	}
	d := serveDaemon(t, bin, "")
	if r := d.cli(t, "launch", "--grant", "dir:"+dir+":rw", hello); r.code != exitUsage {
		t.Errorf("launch --grant dir:…:rw: code %d, want %d", r.code, exitUsage)
	} else {
		oneLine(t, r.stderr, ":ro (read-only) is the only option")
	}
}
