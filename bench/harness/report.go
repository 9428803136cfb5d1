package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// A row is one line of the report: a ratio measured in this run, what it
// is a ratio of, and the measurements it was computed from.
type row struct {
	key   string  // stable name, the baseline's key
	what  string  // what is compared, for people
	ratio float64 // NaN when the row could not be measured
	is    string  // what the ratio is ("sandboxd / wazero, time: lower is better")
	from  string  // the measurements behind it
	na    string  // why there is no ratio
}

func (r row) measured() bool { return r.na == "" && !math.IsNaN(r.ratio) && !math.IsInf(r.ratio, 0) }

// naRow is a row that could not be measured, with the reason.
func naRow(key, what, reason string) row {
	return row{key: key, what: what, ratio: math.NaN(), na: reason}
}

// moveLimit is how far a ratio may move from the baseline's before the
// report names it: 25 %.
const moveLimit = 0.25

// baseline maps a row's key to its ratio in the baseline.
type baseline map[string]float64

// readBaseline reads a baseline: one "key<TAB>ratio" a line; blank lines
// and lines starting with # are comments.
func readBaseline(r io.Reader) (baseline, error) {
	b := baseline{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: want key<TAB>ratio, got %q", n, line)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: ratio %q: %v", n, f[1], err)
		}
		b[strings.TrimSpace(f[0])] = v
	}
	return b, sc.Err()
}

// writeBaseline writes the measured rows' ratios as a baseline, with
// header as comment lines.
func writeBaseline(w io.Writer, header []string, rows []row) error {
	bw := bufio.NewWriter(w)
	for _, h := range header {
		fmt.Fprintf(bw, "# %s\n", h)
	}
	for _, r := range rows {
		if r.measured() {
			fmt.Fprintf(bw, "%s\t%s\n", r.key, formatRatio(r.ratio))
		}
	}
	return bw.Flush()
}

// A move is a ratio that moved from its baseline by more than moveLimit.
type move struct {
	key      string
	old, now float64
}

func (m move) String() string {
	return fmt.Sprintf("MOVED: %s: %s → %s (%+.0f %%)", m.key, formatRatio(m.old), formatRatio(m.now), (m.now/m.old-1)*100)
}

// compare returns the rows whose ratio moved by more than moveLimit from
// the baseline's (relative to the baseline's), and the keys measured now
// that the baseline does not hold and those it holds that were not
// measured now.
func compare(rows []row, base baseline) (moved []move, fresh, missing []string) {
	seen := map[string]bool{}
	for _, r := range rows {
		if !r.measured() {
			continue
		}
		seen[r.key] = true
		old, ok := base[r.key]
		if !ok {
			fresh = append(fresh, r.key)
			continue
		}
		if movedBeyond(old, r.ratio, moveLimit) {
			moved = append(moved, move{r.key, old, r.ratio})
		}
	}
	for k := range base {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	return moved, fresh, missing
}

// movedBeyond reports whether now differs from old by more than limit of
// old.
func movedBeyond(old, now, limit float64) bool {
	if old == 0 {
		return now != 0
	}
	return math.Abs(now/old-1) > limit
}

// formatRatio prints a ratio with three significant digits.
func formatRatio(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// printTable writes the rows as one Markdown table, with each row's
// baseline ratio where the baseline has one.
func printTable(w io.Writer, rows []row, base baseline) {
	fmt.Fprintln(w, "| key | comparison | ratio | ratio is | baseline | measured |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		ratio := "n/a (" + r.na + ")"
		if r.measured() {
			ratio = "**" + formatRatio(r.ratio) + "**"
		}
		old := "—"
		if v, ok := base[r.key]; ok {
			old = formatRatio(v)
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %s |\n", r.key, cell(r.what), ratio, cell(r.is), old, cell(r.from))
	}
}

// cell keeps a table cell on one line and its pipes escaped.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}
