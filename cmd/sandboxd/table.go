package main

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// table prints rows of cells in aligned columns, two spaces apart, the
// last cell of each row unpadded: what text/tabwriter prints for
// tab-separated cells when every row has the same number of cells, at a fraction of its cost on a listing of 100,000
// guests (tabwriter examines every byte, and ps spent a third of its time
// there).
type table struct {
	rows   [][]string
	widths []int
}

// add appends a row. Tabs and newlines in a cell are printed as spaces,
// other control characters escaped (printable).
func (t *table) add(cells ...string) {
	for i, c := range cells {
		if strings.ContainsAny(c, "\t\n") {
			c = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		}
		c = printable(c)
		cells[i] = c
		if i == len(t.widths) {
			t.widths = append(t.widths, 0)
		}
		t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
	}
	t.rows = append(t.rows, cells)
}

// write prints the rows to w.
func (t *table) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	const gap = 2
	pad := strings.Repeat(" ", slices.Max(append([]int{0}, t.widths...))+gap)
	for _, row := range t.rows {
		for i, c := range row {
			bw.WriteString(c)
			if i < len(row)-1 {
				bw.WriteString(pad[:t.widths[i]-utf8.RuneCountInString(c)+gap])
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// words joins list with sep, each element that would not read back as
// itself (empty, or holding sep, a space, a quote, a backslash or a
// control character) written as a Go string literal: `a "b c" d` for the
// arguments a, "b c" and d, not `a b c d`.
func words(list []string, sep string) string {
	out := make([]string, len(list))
	for i, w := range list {
		if w == "" || strings.Contains(w, sep) || strings.ContainsAny(w, " \"'\\") || strings.ContainsFunc(w, unicode.IsControl) {
			w = strconv.Quote(w)
		}
		out[i] = w
	}
	return strings.Join(out, sep)
}

// word is s as one cell of a column that words alone would split: a
// Go string literal where s would not read back as itself (empty, or
// holding a space, a quote, a backslash or a control character), as
// words writes each of its elements.
func word(s string) string { return words([]string{s}, " ") }

// printable returns s with its control characters (C0, DEL and C1) written
// as Go escapes ("\x1b"): text one user gives and another reads (a kill
// reason, a grant's path) then cannot move the reader's cursor, clear the
// screen or set a terminal's title.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r) // '\x1b'
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
