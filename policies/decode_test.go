package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// decodeCases are policy bodies that reach every path of the decoder:
// each attribute of each block, wrong types, nulls, missing and unknown
// attributes and blocks, repeated single blocks and wrong label counts.
var decodeCases = []string{
	evalPolicy,
	`resource "dir" "d" { path = "/srv", read_only = true }`,
	`resource "sock" "s" { tcp = "h:1", unix = "/x" }`,
	`resource "dir" "d" { path = 1 }`,
	`resource "dir" "d" { path = ["a"] }`,
	`resource "dir" "d" { read_only = "yes" }`,
	`resource "dir" "d" { read_only = null }`,
	`resource "dir" { path = "/a" }`,
	`resource "dir" "d" "e" {}`,
	`resource "chan" "c" { bogus = 1 }`,
	`policy "x" {}`,
	`x = 1`,
	"grant \"g\" {\n resources = [\"chan:c\"]\n rights = [\"fd_read\"]\n read_only = false\n ttl = \"1m\"\n subject {\n  uids = [1, 2]\n  gids = [3]\n  users = [\"a\"]\n }\n module {\n  sha256 = [\"00\"]\n  labels = { a = \"b\", c = 1 }\n }\n}",
	"grant \"g\" {\n resources = \"chan:c\"\n}",
	"grant \"g\" {\n resources = null\n}",
	"grant \"g\" {\n resources = [1, true]\n rights = [[\"x\"]]\n}",
	"grant \"g\" {}",
	"grant {}",
	"grant \"g\" {\n resources = [\"chan:c\"]\n subject {}\n subject {}\n module {}\n module {}\n}",
	"grant \"g\" {\n resources = [\"chan:c\"]\n subject {\n  uids = [1.5]\n  gids = \"x\"\n  users = 3\n  who = 1\n }\n}",
	"grant \"g\" {\n resources = [\"chan:c\"]\n module {\n  labels = [\"a\"]\n  sha256 = {}\n }\n to {}\n}",
	"delegate \"d\" {\n resources = [\"chan:c\"]\n max_depth = 2\n max_copies = 3\n rights = []\n read_only = true\n ttl = \"5s\"\n module { sha256 = [] }\n to { labels = {} }\n}",
	"delegate \"d\" {\n resources = [\"chan:c\"]\n max_depth = \"two\"\n max_copies = 1.5\n}",
	"delegate \"d\" {\n resources = [\"chan:c\"]\n max_depth = 99999999999999999999\n}",
	"delegate \"d\" {\n max_depth = null\n}",
	"delegate \"d\" {\n resources = [\"chan:c\"]\n max_depth = 1\n to {}\n to {}\n subject {}\n}",
	"deny \"x\" {\n resources = [\"chan:c\"]\n on = [\"grant\"]\n subject { users = [\"u\"] }\n module {}\n to {}\n}",
	"deny \"x\" {\n resources = [\"chan:c\"]\n on = \"grant\"\n rights = []\n}",
	"deny \"x\" {\n resources = [var.x]\n on = [upper(\"grant\")]\n}",
	"resource \"chan\" \"c\" {}\nresource \"chan\" \"c\" {}\ngrant \"a\" { resources = [\"chan:c\"] }\ngrant \"a\" { resources = [\"chan:c\"] }",
}

// The decoder reads every file as gohcl did: the same structs, the same
// diagnostics at the same places.
func TestDecoderAgreesWithGohcl(t *testing.T) {
	srcs := append([]string(nil), decodeCases...)
	for _, name := range []string{"database-client.hcl", "reporting.hcl", "pipeline.hcl"} {
		src, err := os.ReadFile(filepath.Join("examples", name))
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, string(src))
	}
	srcs = append(srcs, fuzzSeeds(t, "FuzzParsePolicy")...)
	for i, src := range srcs {
		if msg := decodeDiff([]byte(src)); msg != "" {
			t.Errorf("case %d:\n%s\n%s", i, src, msg)
		}
	}
}

// FuzzDecodeAgreesWithGohcl holds the decoder to gohcl on any text.
func FuzzDecodeAgreesWithGohcl(f *testing.F) {
	for _, src := range decodeCases {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if msg := decodeDiff(src); msg != "" {
			t.Fatal(msg)
		}
	})
}

// decodeDiff decodes src both ways and says how the results differ, or
// returns "".
func decodeDiff(src []byte) string {
	f, diags := hclsyntax.ParseConfig(src, "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return ""
	}
	var want fileBody
	wantDiags := gohcl.DecodeBody(f.Body, nil, &want)
	var d decoder
	got := d.decodeBody(f.Body)
	if w, g := diagLines(wantDiags), diagLines(d.diags); w != g {
		return "diagnostics:\n" + g + "\nwant (gohcl):\n" + w
	}
	if wantDiags.HasErrors() {
		return "" // gohcl leaves a partly filled struct, which Load drops
	}
	if !reflect.DeepEqual(*got, want) {
		return fmt.Sprintf("decoded:\n%+v\nwant (gohcl):\n%+v", *got, want)
	}
	return ""
}

func diagLines(ds hcl.Diagnostics) string {
	var lines []string
	for _, d := range ds {
		l := d.Summary + ": " + d.Detail
		if d.Subject != nil {
			l = d.Subject.String() + ": " + l
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// fuzzSeeds reads the committed seed corpus of a fuzz target.
func fuzzSeeds(t *testing.T, target string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				out = append(out, s)
			}
		}
	}
	return out
}
