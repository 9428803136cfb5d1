package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/daemon/server"
)

func TestAuditAnswersTheLiveGraphToTheDaemonsUserOnly(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	grant := "dir:" + shortTempDir(t) + "=data"
	root, err := c.Mint(ctx, grant)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Release()
	narrow, err := root.Restrict(ctx, treeRights, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer narrow.Release()

	data, err := c.Audit(ctx, audit.QueryTrace, narrow.ID(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var steps []audit.Step
	if err := json.Unmarshal(data, &steps); err != nil || len(steps) != 2 || steps[0].Cap != root.ID() || steps[1].Cap != narrow.ID() || steps[1].Edge != "restrict" {
		t.Fatalf("trace %s: %+v %v", data, steps, err)
	}
	checkMintedRoot(t, steps[0], grant)
	data, err = c.Audit(ctx, audit.QueryWhatIf, root.ID(), time.Time{})
	var cut audit.Cut
	if err != nil || json.Unmarshal(data, &cut) != nil || len(cut.Revoked) != 2 {
		t.Fatalf("what-if %s: %v", data, err)
	}
	if _, err := c.Audit(ctx, "who-owns", "", time.Time{}); err == nil || !strings.Contains(err.Error(), "unknown audit query") {
		t.Fatalf("unknown query: %v", err)
	}
	// This daemon keeps no log: only the live graph is known.
	if _, err := c.Audit(ctx, audit.QueryGraph, "", time.Now()); err == nil || !strings.Contains(err.Error(), "keeps no audit log") {
		t.Fatalf("graph as of a time without a log: %v", err)
	}

	d.asOtherUsers(t)
	other, err := d.clientAs(t, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Audit(ctx, audit.QueryGraph, "", time.Time{}); err == nil || !strings.Contains(err.Error(), "only root and the daemon's own user") {
		t.Fatalf("another user's audit query: %v, want a refusal", err)
	}
}

// checkMintedRoot checks that a minted root's origin is the grant's text,
// as a launch grant's is, and that who minted it is the record's by.
func checkMintedRoot(t *testing.T, root audit.Step, grant string) {
	t.Helper()
	if root.Origin != grant || root.By == "" || root.ByUID == nil {
		t.Fatalf("minted root: origin %q, by %q %v; want origin %q and who minted it", root.Origin, root.By, root.ByUID, grant)
	}
}
