package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/audit"
)

// audit log (with --follow too), graph and who-can on a log edited by hand (a grant's
// resource changed in its line) used to answer from it as if it were
// whole: who-can named the edited grant's holder as reaching a directory
// it was never given. Each exits 1 naming the first bad place, as verify
// does, and prints nothing from it on.
func TestAuditReadersOfAnEditedLogSaySo(t *testing.T) {
	t.Parallel()
	path := editedLog(t)
	where := path + ":3 (seq 3): the record was changed after it was written"
	for _, args := range [][]string{
		{"audit", "log", "--log", path},
		{"audit", "log", "--follow", "--log", path},
		{"audit", "graph", "--log", path},
		{"audit", "who-can", "--log", path, "dir:/srv/secret"},
	} {
		r := sandboxd(t, "", args...)
		if r.code != exitFailure || !strings.Contains(r.stderr, where) || strings.Contains(r.stdout, "secret") || strings.Contains(r.stdout, "g-c2") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1, nothing of c2 printed, and stderr naming %q", args, r.code, r.stdout, r.stderr, where)
		}
	}
}

// audit verify of a broken log named the first bad record and said no
// more: not that the daemon goes on appending to it, nor how to start a
// chain the readers will answer from again; and it counted the edited
// record among those verified before it (3, for an edit of seq 3). It
// says both, and counts 2.
func TestAuditVerifyOfABrokenLogSaysWhatToDo(t *testing.T) {
	t.Parallel()
	path := editedLog(t)
	r := sandboxd(t, "", "audit", "verify", "--log", path)
	out := r.stdout + r.stderr
	if r.code != exitFailure || !strings.Contains(out, path+":3 (seq 3)") || !strings.Contains(out, "move") || !strings.Contains(out, "aside") || !strings.Contains(out, "2 records verified before it") {
		t.Fatalf("verify of an edited log: exit %d, output %q; want 1, naming %s:3, 2 records verified before it, and saying to move the log aside", r.code, out, path)
	}
}

// editedLog is a log of three grants (c1, c2, c3 of /srv/a, b and c held
// by g-c1, g-c2, g-c3), c2's line edited to grant /srv/secret.
func editedLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, res string }{{"c1", "dir /srv/a"}, {"c2", "dir /srv/b"}, {"c3", "dir /srv/c"}} {
		if _, err := l.Append(audit.Record{Type: audit.TypeGrant, Cap: &audit.CapRecord{ID: c.id, Kind: "dir", Holder: "g-" + c.id, Base: "fd_read", Edge: "grant", Resource: c.res}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Line 3 is c2's grant: it now reads as a grant of /srv/secret.
	if err := os.WriteFile(path, bytes.Replace(data, []byte("dir /srv/b"), []byte("dir /srv/secret"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
