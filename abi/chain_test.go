package abi_test

import (
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// dupChainWAT dups its handle 0 and closes the original, 10,000 times
// over, keeping only the newest copy; then it blocks reading its handle 1.
const dupChainWAT = `(module
  (import "sandboxd" "fd_dup" (func $dup (param i32 i32) (result i32)))
  (import "sandboxd" "fd_close" (func $close (param i32) (result i32)))
  (import "sandboxd" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $fd i32) (local $i i32)
    (loop $l
      (if (call $dup (local.get $fd) (i32.const 0)) (then unreachable))
      (drop (call $close (local.get $fd)))
      (local.set $fd (i32.load (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10000))))
    (i32.store (i32.const 16) (i32.const 64)) (i32.store (i32.const 20) (i32.const 8))
    (drop (call $read (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32)))))`

// A guest that dups a handle and closes the old one, over and over, holds
// one handle, and the kernel keeps one capability for it: each closed copy
// hands what was derived from it to its parent. Revoking the grant still
// reaches the newest copy.
func TestDupAndCloseDoesNotGrowTheDerivationTree(t *testing.T) {
	h := newHarness(t)
	tbl := caps.NewTable(h.k, &caps.Holder{ID: "g-chain"}, 4)
	s := caps.NewStdout("stdout", &h.stdout)
	grant := h.k.Mint(tbl.Holder(), s, caps.RightsTTYBase, 0, s.Describe(), "test")
	if _, err := tbl.Insert(grant); err != nil {
		t.Fatal(err)
	}
	h.channelEnd(t, tbl, false)
	m, err := h.rt.Compile(t.Context(), "chain.wat", abitest.WATText(t, dupChainWAT))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: "g-chain", Table: tbl})
	g.Start(t.Context())
	awaitBlocked(t, g, 0)
	snap := h.k.Snapshot()
	if len(snap) > 4 {
		var ids []string
		for _, in := range snap {
			ids = append(ids, string(in.ID)+" "+in.Edge.String())
		}
		t.Fatalf("the kernel keeps %d capabilities for a guest holding 2 handles (%s)", len(snap), strings.Join(ids[:min(8, len(ids))], ", "))
	}
	r := h.k.Revoke(grant, "test")
	if len(r.Revoked) != 2 {
		t.Fatalf("revoking the grant took %d capabilities (%v), want the grant and its newest copy", len(r.Revoked), r.Revoked)
	}
	killAndAwait(t, g, "the dup-chain guest")
}
