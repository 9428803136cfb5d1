package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
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
