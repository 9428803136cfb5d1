package abidoc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A File is one generated file: its path under the repository root and
// what it should hold.
type File struct {
	Path string
	Data []byte
}

// A section is a generated table inside a hand-written document: the text
// between its markers, which write prints.
type section struct {
	begin, end string
	write      func(io.Writer) error
}

// The marker lines around the generated tables of docs/ABI.md and
// docs/WASI.md. Everything else in those files is written by hand.
const (
	callTableBegin  = "<!-- BEGIN GENERATED CALL TABLE (go generate ./abi/...) -->"
	callTableEnd    = "<!-- END GENERATED CALL TABLE -->"
	wasiTableBegin  = "<!-- BEGIN GENERATED WASI TABLE (go generate ./abi/...) -->"
	wasiTableEnd    = "<!-- END GENERATED WASI TABLE -->"
	wasiRightsBegin = "<!-- BEGIN GENERATED WASI RIGHTS (go generate ./abi/...) -->"
	wasiRightsEnd   = "<!-- END GENERATED WASI RIGHTS -->"
)

// documents are the hand-written documents with generated tables, by
// path under the repository root.
var documents = []struct {
	path     string
	sections []section
}{
	{"docs/ABI.md", []section{{callTableBegin, callTableEnd, WriteMarkdown}}},
	{"docs/WASI.md", []section{
		{wasiTableBegin, wasiTableEnd, WriteWASIMarkdown},
		{wasiRightsBegin, wasiRightsEnd, WriteWASIRightsMarkdown},
	}},
}

// HeaderPath is where WriteCHeader's output lives, under the repository
// root.
const HeaderPath = "abi/include/sandboxd.h"

// Generate returns every generated file as the call tables make it: the C
// header, and docs/ABI.md and docs/WASI.md as read under root with the
// text between each pair of markers replaced. `go generate ./abi/...`
// writes them; the tests compare them with the files.
func Generate(root string) ([]File, error) {
	var h bytes.Buffer
	if err := WriteCHeader(&h); err != nil {
		return nil, err
	}
	files := []File{{HeaderPath, h.Bytes()}}
	for _, d := range documents {
		doc, err := os.ReadFile(filepath.Join(root, d.path))
		if err != nil {
			return nil, err
		}
		for _, s := range d.sections {
			var b bytes.Buffer
			if err := s.write(&b); err != nil {
				return nil, err
			}
			if doc, err = replaceBetween(doc, s.begin, s.end, b.Bytes()); err != nil {
				return nil, fmt.Errorf("%s: %w", d.path, err)
			}
		}
		files = append(files, File{d.path, doc})
	}
	return files, nil
}

// replaceBetween returns doc with the text between the begin and end
// markers replaced by body.
func replaceBetween(doc []byte, begin, end string, body []byte) ([]byte, error) {
	s := string(doc)
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return nil, fmt.Errorf("markers %q … %q not found", begin, end)
	}
	return []byte(s[:i+len(begin)] + "\n" + string(body) + s[j:]), nil
}
