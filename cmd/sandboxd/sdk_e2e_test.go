package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// A Go guest built on the SDK receives a file granted while it runs
// (`sandboxd grant`) on its supervisor channel, writes through it, and
// sees it revoked as ENOTCAPABLE.
func TestGoGuestReceivesALiveGrantAndSeesItRevoked(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	wasm := writeGuest(t, "gogrant.wasm", abitest.Go(t, "cmd/sandboxd/testdata/gogrant"))
	r := d.cli(t, "launch", "--detach", wasm)
	if r.code != 0 {
		t.Fatalf("launch --detach: code %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	file := filepath.Join(privateDir(t), "ticks")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = d.cli(t, "grant", id, "--grant", "file:"+file+"=ticks")
	if r.code != 0 {
		t.Fatalf("grant: code %d, stderr %q", r.code, r.stderr)
	}
	capID, _, _ := strings.Cut(r.stdout, "\t")
	awaitCount(t, file, "tick\n", 3)
	if r := d.cli(t, "revoke", capID); r.code != 0 {
		t.Fatalf("revoke: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "wait", id); r.code != 0 {
		t.Fatalf("wait: code %d; the guest said %q", r.code, d.cli(t, "logs", id).stdout)
	}
	if r := d.cli(t, "logs", id); r.stdout != "received file ticks\nrevoked\n" {
		t.Fatalf("logs: %q, stderr %q", r.stdout, r.stderr)
	}
}
