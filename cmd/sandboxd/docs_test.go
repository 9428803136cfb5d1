package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
)

// headingAnchors returns the anchors a Markdown renderer gives the
// headings of file: lower case, punctuation dropped, spaces as "-", a
// repeated heading numbered from -1.
func headingAnchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	out, seen := map[string]bool{}, map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		a := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// Every link from the user's docs to a section of a doc reaches a
// section that exists, so that what a reader is sent to read is there.
func TestDocLinksReachTheirSections(t *testing.T) {
	docs := filepath.Join("..", "..", "docs")
	files, err := filepath.Glob(filepath.Join(docs, "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs in %s: %v", docs, err)
	}
	files = append(files, filepath.Join("..", "..", "README.md"))
	link := regexp.MustCompile(`\]\(([^)#\s]*)#([^)\s]+)\)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := f
			if m[1] != "" {
				if strings.Contains(m[1], "://") {
					continue
				}
				target = filepath.Join(filepath.Dir(f), m[1])
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links to %s#%s: %v", filepath.Base(f), m[1], m[2], err)
				continue
			}
			if !headingAnchors(t, target)[m[2]] {
				t.Errorf("%s links to %s#%s: no such section", filepath.Base(f), m[1], m[2])
			}
		}
	}
}

// jsonFields returns the names the fields of v's type have in JSON.
func jsonFields(v any) []string {
	var names []string
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
			name = tag
		}
		names = append(names, name)
	}
	return names
}

// Every field a verb's --json prints is named in docs/CLI.md's JSON
// output table, in that verb's row (TestEveryVerbThatPrintsHasJSON checks
// the other way, that nothing printed is unknown to the types).
func TestJSONTableNamesEveryFieldPrinted(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "CLI.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if cells := strings.Split(line, "|"); len(cells) == 5 && strings.Contains(cells[1], "--json") {
			rows[strings.TrimSpace(cells[1])] = cells[3]
		}
	}
	name := regexp.MustCompile("`([A-Za-z0-9]+)`")
	for row, v := range map[string]any{
		"`ps --json`":                 client.GuestInfo{},
		"`caps --json`":               client.Handle{},
		"`revoke --json`":             client.Receipt{},
		"`kill --json`":               killed{},
		"`wait --json`":               waited{},
		"`launch --detach --json`":    launched{},
		"`compile --json`":            compiled{},
		"`rm --json`, `prune --json`": forgotten{},
		"`version --json`":            versionInfo{},
	} {
		text, ok := rows[row]
		if !ok {
			t.Errorf("docs/CLI.md has no JSON output row %s", row)
			continue
		}
		named := map[string]bool{}
		for _, m := range name.FindAllStringSubmatch(text, -1) {
			named[m[1]] = true
		}
		for _, f := range jsonFields(v) {
			if !named[f] {
				t.Errorf("docs/CLI.md, JSON output, row %s does not name the field %s that it prints", row, f)
			}
		}
	}
	named := map[string]bool{}
	for _, m := range name.FindAllStringSubmatch(rows["`caps --json`"], -1) {
		named[m[1]] = true
	}
	for _, f := range jsonFields(client.CapInfo{}) {
		if !named[f] {
			t.Errorf("docs/CLI.md, JSON output, row `caps --json` does not name client.CapInfo's field %s", f)
		}
	}
}

// docs/CLI.md's "The daemon's verbs" names every verb that talks to the
// daemon (has --socket) and every default its --socket has.
func TestDaemonVerbsDocNamesEachVerbAndTheSocketDefaults(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "CLI.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "## The daemon's verbs\n\n")
	para, _, _ := strings.Cut(sec, "\n\n")
	for name := range commands {
		if name == "serve" {
			continue // the daemon itself
		}
		if r := sandboxd(t, "", name, "-h"); strings.Contains(r.stdout, "--socket") && !strings.Contains(para, "`"+name+"`") {
			t.Errorf("The daemon's verbs does not name %s, which talks to the daemon", name)
		}
	}
	// client.DefaultSocketPath's choices, in order.
	for _, d := range []string{"`$SANDBOXD_SOCKET`", "`/run/sandboxd/sandboxd.sock`", "`$XDG_RUNTIME_DIR/sandboxd.sock`", "`$TMPDIR/sandboxd-UID.sock`"} {
		if !strings.Contains(para, d) {
			t.Errorf("The daemon's verbs does not give the --socket default %s", d)
		}
	}
}

// helpFlags returns the flags `sandboxd VERB -h` lists.
func helpFlags(t *testing.T, verb string) map[string]bool {
	t.Helper()
	r := sandboxd(t, "", verb, "-h")
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  (--?[a-z][a-z-]*)`).FindAllStringSubmatch(r.stdout, -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h lists no flags: %q", verb, r.stdout)
	}
	return flags
}

// docFlags returns the flags named in backquotes in text.
func docFlags(text string) map[string]bool {
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile("`(--?[a-z][a-z-]*)[ `=]").FindAllStringSubmatch(text, -1) {
		flags[m[1]] = true
	}
	return flags
}

// The flags docs/CLI.md gives run (its table) and each daemon verb (its
// row in "The daemon's verbs") are the flags the verb has.
func TestCLIDocNamesEveryFlagOfRunAndTheDaemonVerbs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "CLI.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	documented := map[string]map[string]bool{"run": {}}
	_, runSec, _ := strings.Cut(doc, "## `sandboxd run")
	runSec, _, _ = strings.Cut(runSec, "\n\n\n")
	for _, line := range strings.Split(runSec, "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			for f := range docFlags(cells[1]) {
				documented["run"][f] = true
			}
		}
	}
	_, verbs, _ := strings.Cut(doc, "| verb | flags | prints |")
	verbs, _, _ = strings.Cut(verbs, "\n\n")
	for _, line := range strings.Split(verbs, "\n") {
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "/"), "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		verb := strings.Fields(strings.Trim(strings.TrimSpace(cells[1]), "`"))[0]
		documented[verb] = docFlags(cells[2])
		documented[verb]["--socket"] = true // given for them all above the table
	}
	if len(documented) < 10 {
		t.Fatalf("found the flags of %d verbs in docs/CLI.md: %v", len(documented), documented)
	}
	for verb, doc := range documented {
		has := helpFlags(t, verb)
		for f := range has {
			if !doc[f] {
				t.Errorf("%s has %s, which docs/CLI.md does not give it", verb, f)
			}
		}
		for f := range doc {
			if !has[f] {
				t.Errorf("docs/CLI.md gives %s the flag %s, which it does not have", verb, f)
			}
		}
	}
}

// An error about a grant quotes it as Grant.String() writes it, the
// canonical text (the guest name only where it is not the default), not
// as it was typed: `--grant file:/srv=srv` fails as `grant "file:/srv"`.
// The lines the docs show must be what a user will see.
func TestDocGrantErrorsQuoteTheGrantAsSandboxdPrintsIt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs: %v", err)
	}
	files = append(files, filepath.Join("..", "..", "README.md"))
	quoted := regexp.MustCompile(`sandboxd: (?:[^"\n]*: )?grant "([^"…]+)": `)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range quoted.FindAllStringSubmatch(string(b), -1) {
			n++
			g, err := daemon.ParseGrant(m[1])
			if err != nil {
				t.Errorf("%s: grant %q does not parse: %v", filepath.Base(f), m[1], err)
				continue
			}
			if g.String() != m[1] {
				t.Errorf("%s quotes grant %q in an error, which sandboxd prints as %q", filepath.Base(f), m[1], g.String())
			}
		}
	}
	if n == 0 {
		t.Fatal("no grant errors found in the docs: has their form changed?")
	}
	// The form the docs are held to is the binary's: the default name
	// typed out is not quoted back.
	dir := t.TempDir()
	r := sandboxd(t, "", "run", "--grant", "file:"+dir+"="+filepath.Base(dir), guest(t, "cmd/sandboxd/testdata/touch.wat"))
	if r.code != exitGrant {
		t.Errorf("a file grant of a directory: code %d, want %d", r.code, exitGrant)
	}
	oneLine(t, r.stderr, `grant "file:`+dir+`": `)
}
