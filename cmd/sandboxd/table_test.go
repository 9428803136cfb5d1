package main

import (
	"bytes"
	"fmt"
	"testing"
	"text/tabwriter"
)

// TestTablePrintsWhatTabwriterPrints holds table to text/tabwriter's
// output for rows like those ps, caps and inspect print, with empty and
// multi-byte cells among them.
func TestTablePrintsWhatTabwriterPrints(t *testing.T) {
	rows := [][]string{
		{"GUEST", "NAME", "MODULE", "STATE"},
		{"g-0123456789ab", "-", "idle.wasm", "running"},
		{"g-1", "wörker-ü", "x.wasm", "exited 7"},
		{"", "", "", ""},
		{"a", "b", "c", "a longer last cell than the header's"},
	}
	var want bytes.Buffer
	tw := tabwriter.NewWriter(&want, 0, 4, 2, ' ', 0)
	var tb table
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
		tb.add(append([]string(nil), r...)...)
	}
	tw.Flush()
	var got bytes.Buffer
	if err := tb.write(&got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("table printed\n%s\ntabwriter\n%s", got.String(), want.String())
	}
	var tabbed table
	tabbed.add("a\tb", "c\nd")
	got.Reset()
	_ = tabbed.write(&got)
	if got.String() != "a b  c d\n" {
		t.Fatalf("tabs and newlines in cells: %q", got.String())
	}
}
