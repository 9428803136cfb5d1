package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
)

func TestAbiListsAll49CallsInSlotOrder(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "abi")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	heading := regexp.MustCompile(`(?m)^ ?(\d+)  ([a-z0-9_]+)\(`)
	got := heading.FindAllStringSubmatch(r.stdout, -1)
	calls := abi.Calls()
	if len(got) != 49 || len(calls) != 49 {
		t.Fatalf("listed %d calls, the table has %d; want 49", len(got), len(calls))
	}
	for i, m := range got {
		if m[2] != calls[i].Name {
			t.Errorf("line %d lists %s, want %s", i, m[2], calls[i].Name)
		}
	}
}

func TestAbiFormatsAreTheGeneratedForms(t *testing.T) {
	t.Parallel()
	for format, write := range abiFormats {
		var want bytes.Buffer
		if err := write(&want); err != nil {
			t.Fatal(err)
		}
		r := sandboxd(t, "", "abi", "--format", format)
		if r.code != 0 || r.stdout != want.String() {
			t.Errorf("--format %s: exit %d, output differs from the generator (%d bytes vs %d)", format, r.code, len(r.stdout), want.Len())
		}
	}
	if r := sandboxd(t, "", "abi", "--format", "markdown"); !strings.Contains(r.stdout, "| 39 | `proc_exit` |") {
		t.Errorf("markdown lacks the proc_exit row")
	}
	if r := sandboxd(t, "", "abi", "--format", "c-header"); !strings.Contains(r.stdout, "#ifndef SANDBOXD_H") {
		t.Errorf("c-header output is not the header")
	}
	r := sandboxd(t, "", "abi", "--format", "xml")
	if r.code != exitUsage {
		t.Errorf("--format xml: exit %d, want %d", r.code, exitUsage)
	}
	oneLine(t, r.stderr, `--format "xml" is not one of text, markdown, c-header`)
}
