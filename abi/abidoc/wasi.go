package abidoc

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
)

// WriteWASIMarkdown prints the preview1 function table of docs/WASI.md.
func WriteWASIMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| # | function | parameters | rights checked (WASI names) | CloudABI origin | support | what changed / notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, c := range abi.WASICalls() {
		origin := c.Origin
		if origin == "" {
			origin = "— (new in WASI)"
		}
		if err := writeRow(w, &c, rightsText(&c, wasiCheckNames), origin); err != nil {
			return err
		}
	}
	return nil
}

// WriteWASIRightsMarkdown prints the rights translation table of
// docs/WASI.md, from the table the code translates with.
func WriteWASIRightsMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| sandboxd right (CloudABI bit) | WASI right(s) (bit) |")
	fmt.Fprintln(w, "|---|---|")
	wasiNames := map[uint64]string{}
	for i, n := range strings.Fields(wasiRightNames) {
		wasiNames[1<<i] = n
	}
	mapped := caps.Rights(0)
	for _, m := range wasiRightsTable() {
		mapped |= m.c
		var ws []string
		for b := uint64(1); b <= m.w; b <<= 1 {
			if m.w&b != 0 {
				ws = append(ws, fmt.Sprintf("%s (%d)", wasiNames[b], bitIndex(b)))
			}
		}
		if _, err := fmt.Fprintf(w, "| %s (%d) | %s |\n", m.c, bitIndex(uint64(m.c)), strings.Join(ws, ", ")); err != nil {
			return err
		}
	}
	for _, n := range caps.RightNames() {
		r, _ := caps.ParseRight(n)
		if mapped&r == 0 {
			if _, err := fmt.Fprintf(w, "| %s (%d) | — (not visible to WASI; dropped by fd_fdstat_set_rights) |\n", n, bitIndex(uint64(r))); err != nil {
				return err
			}
		}
	}
	return nil
}

// wasiRightNames are WASI's rights in bit order (typenames.witx).
const wasiRightNames = `fd_datasync fd_read fd_seek fd_fdstat_set_flags fd_sync fd_tell fd_write
	fd_advise fd_allocate path_create_directory path_create_file path_link_source path_link_target
	path_open fd_readdir path_readlink path_rename_source path_rename_target path_filestat_get
	path_filestat_set_size path_filestat_set_times fd_filestat_get fd_filestat_set_size
	fd_filestat_set_times path_symlink path_remove_directory path_unlink_file poll_fd_readwrite
	sock_shutdown sock_accept`

// wasiCheckNames names the rights in r, which c checks, by their WASI
// names, in CloudABI bit order. A right WASI split in two is named by its
// half that is c's own name (path_unlink_file checks file_unlink), or
// else by the half in c's family (path_ or fd_), or else by both.
func wasiCheckNames(c *abi.Call, r caps.Rights) []string {
	names := strings.Fields(wasiRightNames)
	family := c.Name[:strings.IndexByte(c.Name, '_')+1]
	var out []string
	for b := caps.Rights(1); b != 0 && b <= r; b <<= 1 {
		if r&b == 0 {
			continue
		}
		var halves []string
		for w := abi.WASIRightsOf(b); w != 0; w &= w - 1 {
			halves = append(halves, names[bitIndex(w&-w)])
		}
		out = append(out, pickHalf(halves, c.Name, family)...)
	}
	return out
}

// pickHalf returns, of the WASI names of one CloudABI right, the one that
// is call, else the one that begins with family, else all of them.
func pickHalf(halves []string, call, family string) []string {
	if len(halves) < 2 {
		return halves
	}
	for _, h := range halves {
		if h == call {
			return []string{h}
		}
	}
	var fam []string
	for _, h := range halves {
		if strings.HasPrefix(h, family) {
			fam = append(fam, h)
		}
	}
	if len(fam) == 1 {
		return fam
	}
	return halves
}

func bitIndex(b uint64) int {
	i := 0
	for b > 1 {
		b >>= 1
		i++
	}
	return i
}

// wasiRight is one row of the rights translation: a CloudABI right and
// the WASI rights that carry its meaning.
type wasiRight struct {
	c caps.Rights
	w uint64
}

// wasiRightsTable is the translation abi.WASIRightsOf makes of every
// CloudABI right WASI can name, ordered by the first WASI bit of each.
func wasiRightsTable() []wasiRight {
	var t []wasiRight
	for _, n := range caps.RightNames() {
		r, _ := caps.ParseRight(n)
		if w := abi.WASIRightsOf(r); w != 0 {
			t = append(t, wasiRight{r, w})
		}
	}
	sort.Slice(t, func(i, j int) bool { return t[i].w&-t[i].w < t[j].w&-t[j].w })
	return t
}
