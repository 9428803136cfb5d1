package audit

import (
	"strings"
	"testing"
	"time"
)

// who-can of a declared resource by name (dir:reports) answers after every
// grant of that name has ended: where those grants opened it is kept, so
// that the grant of the directory above it, still live, is listed; and it
// is kept past a prune (in the checkpoint's graph). It answered only while
// a grant by that name was live: nothing once its guest had exited.
func TestWhoCanByNameAnswersAfterItsGrantsHaveEnded(t *testing.T) {
	dir := func(id, holder, origin, resource string) *CapRecord {
		return &CapRecord{ID: id, Kind: "dir", Holder: holder, Base: "file_open", Edge: "grant", Origin: origin, Resource: resource}
	}
	path := logOf(t, []Record{
		{Type: TypeGrant, Cap: dir("c1", "g-1", "dir:reports=reports:ro", "dir /srv/reports")},
		{Type: TypeGrant, Cap: dir("c2", "g-2", "dir:/srv=srv", "dir /srv")},
		{Type: TypeClose, Cap: dir("c1", "g-1", "dir:reports=reports:ro", "dir /srv/reports")},
	})
	g, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for name, gr := range map[string]*Graph{"replayed": g, "from its document (a checkpoint)": FromDoc(g.Doc())} {
		doc, err := gr.Answer(QueryWhoCan, "dir:reports")
		if err != nil {
			t.Fatalf("%s: who-can dir:reports: %v", name, err)
		}
		if r := doc.([]Reach); len(r) != 1 || r[0].Cap != "c2" {
			t.Errorf("%s: who-can dir:reports: %+v, want g-2's grant of /srv above it", name, r)
		}
	}
	// A name no grant in the log had is refused, saying why and what to
	// ask instead, rather than answered with nobody.
	if _, err := g.Answer(QueryWhoCan, "dir:nosuch"); err == nil || !strings.Contains(err.Error(), "by its path") {
		t.Errorf("who-can dir:nosuch: %v, want an error saying to ask by its path", err)
	}
}
