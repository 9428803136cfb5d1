// Package abidoc writes what is generated from abi's call tables: the
// text listing of `sandboxd abi`, the call table of docs/ABI.md, the
// function and rights tables of docs/WASI.md, and the C header
// abi/include/sandboxd.h. `go generate ./abi/...` rewrites the files
// (Generate, through abi/internal/abigen); the tests here fail when one
// of them is stale.
package abidoc

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// signature is c as the text listing shows it: "fd_close(fd i32) → errno".
func signature(c *abi.Call) string {
	var b strings.Builder
	b.WriteString(c.Name)
	b.WriteByte('(')
	for i, p := range c.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		if p.Pointer {
			b.WriteByte('*')
		}
		b.WriteString(p.Name)
		b.WriteByte(' ')
		b.WriteString(api.ValueTypeName(p.Type))
	}
	b.WriteByte(')')
	if !c.NoReturn {
		b.WriteString(" → errno")
	}
	return b.String()
}

// WriteTable prints the native call table as plain text (`sandboxd abi`).
func WriteTable(w io.Writer) error {
	for _, c := range abi.Calls() {
		if _, err := fmt.Fprintf(w, "%2d  %s\n", c.Slot, signature(&c)); err != nil {
			return err
		}
		rights := rightsText(&c, cloudABIRightNames)
		if rights == "" {
			rights = "none"
		}
		fmt.Fprintf(w, "    rights: %s; from CloudABI %s; %s\n", rights, c.Origin, c.Support)
		if c.Changed != "" {
			fmt.Fprintf(w, "    changed: %s\n", c.Changed)
		}
		if c.Note != "" {
			fmt.Fprintf(w, "    note: %s\n", c.Note)
		}
	}
	return nil
}

// jsonCall is one call as WriteJSON prints it (`sandboxd abi --json`).
type jsonCall struct {
	Slot      int
	Name      string
	Signature string      // as the text listing shows it: "fd_close(fd i32) → errno"
	Params    []jsonParam // in order
	Returns   string      // "errno", or "" for a call that does not return
	Rights    string      // the rights checks, as the text listing words them; "" for none
	Origin    string      // the CloudABI call it comes from
	Changed   string      // what differs from CloudABI, or ""
	Support   string
	Note      string
}

type jsonParam struct {
	Name    string
	Type    string // i32, i64
	Pointer bool   // an address in the guest's memory
}

// WriteJSON prints the native call table as JSON Lines, one object per
// call (`sandboxd abi --json`).
func WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, c := range abi.Calls() {
		jc := jsonCall{
			Slot: c.Slot, Name: c.Name, Signature: signature(&c), Params: []jsonParam{},
			Rights: rightsText(&c, cloudABIRightNames), Origin: c.Origin, Changed: c.Changed,
			Support: fmt.Sprint(c.Support), Note: c.Note,
		}
		if !c.NoReturn {
			jc.Returns = "errno"
		}
		for _, p := range c.Params {
			jc.Params = append(jc.Params, jsonParam{Name: p.Name, Type: api.ValueTypeName(p.Type), Pointer: p.Pointer})
		}
		if err := enc.Encode(jc); err != nil {
			return err
		}
	}
	return nil
}

// rightsText words c's rights checks for the docs, naming rights with
// names: "fd_read|fd_seek", "file_link_source on fd1; file_link_target on
// fd2", "file_stat_fput_size for SIZE; …". It is "" when c needs none.
func rightsText(c *abi.Call, names func(c *abi.Call, r caps.Rights) []string) string {
	params := map[string]bool{}
	for _, n := range c.Rights {
		params[c.HandleParam(n)] = true
	}
	var parts []string
	for _, n := range c.Rights {
		var b strings.Builder
		if ns := names(c, n.Rights); len(ns) == 0 {
			b.WriteString("none")
		} else if n.AnyOf {
			b.WriteString(strings.Join(ns, " or "))
		} else {
			b.WriteString(strings.Join(ns, "|"))
		}
		if n.Inheriting {
			b.WriteString(" inheritable")
		}
		if len(params) > 1 {
			b.WriteString(" on " + c.HandleParam(n))
		}
		if n.When != "" {
			b.WriteString(" " + n.When)
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "; ")
}

// cloudABIRightNames names the rights in r by their CloudABI names, in
// bit order.
func cloudABIRightNames(_ *abi.Call, r caps.Rights) []string {
	if r == 0 {
		return nil
	}
	return strings.Split(r.String(), "|")
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// writeRow prints c as a row of a Markdown call table: number, name,
// parameters and result, rights (or "—"), origin, support, and what
// changed and the notes.
func writeRow(w io.Writer, c *abi.Call, rights, origin string) error {
	var ps []string
	for _, p := range c.Params {
		n := p.Name
		if p.Pointer {
			n = "*" + n
		}
		ps = append(ps, n+" "+api.ValueTypeName(p.Type))
	}
	res := "→ errno"
	if c.NoReturn {
		res = "(no return)"
	}
	notes := c.Changed
	if c.Note != "" {
		if notes != "" {
			notes += "; "
		}
		notes += c.Note
	}
	if rights == "" {
		rights = "—"
	}
	_, err := fmt.Fprintf(w, "| %d | `%s` | %s %s | %s | %s | %s | %s |\n", c.Slot, c.Name,
		mdEscape(strings.Join(ps, ", ")), res, mdEscape(rights), origin, c.Support, mdEscape(notes))
	return err
}

// WriteMarkdown prints the native call table as the Markdown table in
// docs/ABI.md (between its generated-table markers).
func WriteMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| # | call | parameters | rights needed | CloudABI origin | support | what changed / notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, c := range abi.Calls() {
		if err := writeRow(w, &c, rightsText(&c, cloudABIRightNames), c.Origin); err != nil {
			return err
		}
	}
	return nil
}

// WriteCHeader prints abi/include/sandboxd.h: constants and structure
// layouts of the native ABI, and one declaration per call.
func WriteCHeader(w io.Writer) error {
	var b strings.Builder
	b.WriteString(cHeaderTop)
	b.WriteString("/* Rights (CloudABI bit positions). */\n")
	for _, n := range caps.RightNames() {
		r, _ := caps.ParseRight(n)
		fmt.Fprintf(&b, "#define SBX_RIGHT_%s UINT64_C(0x%x)\n", strings.ToUpper(n), uint64(r))
	}
	b.WriteString("\n/* Errors (CloudABI and WASI share this numbering). */\n")
	for e := caps.ESUCCESS; e <= caps.ENOTCAPABLE; e++ {
		fmt.Fprintf(&b, "#define SBX_%s %d\n", e.Error(), uint16(e))
	}
	b.WriteString("\n/* Signals (proc_raise, proc_terminate; CloudABI numbering). */\n")
	for n, name := range abi.SignalNames() {
		if name != "" {
			fmt.Fprintf(&b, "#define SBX_SIG%s %d\n", name, n)
		}
	}
	b.WriteString(cHeaderTypes)
	b.WriteString("\n/* The 49 calls, in CloudABI slot order. */\n")
	for _, c := range abi.Calls() {
		var ps []string
		for _, p := range c.Params {
			t := "uint32_t"
			switch {
			case p.Pointer:
				t = "void *"
			case p.Type == api.ValueTypeI64:
				t = "uint64_t"
			}
			if strings.HasSuffix(t, "*") {
				ps = append(ps, t+p.Name)
			} else {
				ps = append(ps, t+" "+p.Name)
			}
		}
		if len(ps) == 0 {
			ps = []string{"void"}
		}
		ret := "sbx_errno_t"
		if c.NoReturn {
			ret = "SBX_NORETURN void"
		}
		fmt.Fprintf(&b, "SBX_IMPORT(%s) %s sbx_%s(%s);\n", c.Name, ret, c.Name, strings.Join(ps, ", "))
	}
	b.WriteString("\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* SANDBOXD_H */\n")
	_, err := io.WriteString(w, b.String())
	return err
}

const cHeaderTop = `/* sandboxd native ABI for C guests (clang --target=wasm32 -nostdlib).
 * Generated from abi/table.go by "go generate ./abi/..."; do not edit.
 * Every call returns an errno (0 on success) and writes results through
 * trailing pointer parameters; handles are uint32_t fds. See docs/ABI.md. */
#ifndef SANDBOXD_H
#define SANDBOXD_H

#include <stdint.h>
#include <stddef.h>

#define SBX_IMPORT(name) __attribute__((import_module("sandboxd"), import_name(#name)))
#define SBX_NORETURN __attribute__((noreturn))

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t sbx_errno_t;
typedef uint32_t sbx_fd_t;

`

const cHeaderTypes = `
/* File types (CloudABI numbering). */
#define SBX_FILETYPE_UNKNOWN 0x00
#define SBX_FILETYPE_BLOCK_DEVICE 0x10
#define SBX_FILETYPE_CHARACTER_DEVICE 0x11
#define SBX_FILETYPE_DIRECTORY 0x20
#define SBX_FILETYPE_PROCESS 0x50
#define SBX_FILETYPE_REGULAR_FILE 0x60
#define SBX_FILETYPE_SHARED_MEMORY 0x70
#define SBX_FILETYPE_SOCKET_DGRAM 0x80
#define SBX_FILETYPE_SOCKET_STREAM 0x82
#define SBX_FILETYPE_SYMBOLIC_LINK 0x90

/* Clocks. */
#define SBX_CLOCK_MONOTONIC 1
#define SBX_CLOCK_PROCESS_CPUTIME_ID 2
#define SBX_CLOCK_REALTIME 3
#define SBX_CLOCK_THREAD_CPUTIME_ID 4

/* file_open oflags, lookup flags, fd flags, fd_stat_put flags. */
#define SBX_O_CREAT 0x1
#define SBX_O_DIRECTORY 0x2
#define SBX_O_EXCL 0x4
#define SBX_O_TRUNC 0x8
#define SBX_LOOKUP_SYMLINK_FOLLOW 0x1
#define SBX_FDFLAG_APPEND 0x01
#define SBX_FDFLAG_DSYNC 0x02
#define SBX_FDFLAG_NONBLOCK 0x04
#define SBX_FDFLAG_RSYNC 0x08
#define SBX_FDFLAG_SYNC 0x10
#define SBX_FDSTAT_FLAGS 0x1
#define SBX_FDSTAT_RIGHTS 0x2

/* fd_seek whence. */
#define SBX_WHENCE_CUR 1
#define SBX_WHENCE_END 2
#define SBX_WHENCE_SET 3

/* file_stat_fput / file_stat_put flags; file_unlink flags. */
#define SBX_FILESTAT_ATIM 0x01
#define SBX_FILESTAT_ATIM_NOW 0x02
#define SBX_FILESTAT_MTIM 0x04
#define SBX_FILESTAT_MTIM_NOW 0x08
#define SBX_FILESTAT_SIZE 0x10
#define SBX_UNLINK_REMOVEDIR 0x01

/* poll. */
#define SBX_EVENTTYPE_CLOCK 1
#define SBX_EVENTTYPE_CONDVAR 2
#define SBX_EVENTTYPE_FD_READ 3
#define SBX_EVENTTYPE_FD_WRITE 4
#define SBX_EVENTTYPE_LOCK_RDLOCK 5
#define SBX_EVENTTYPE_LOCK_WRLOCK 6
#define SBX_EVENTTYPE_PROC_TERMINATE 7
#define SBX_SUBSCRIPTION_CLOCK_ABSTIME 0x1
#define SBX_EVENT_FD_READWRITE_HANGUP 0x1

/* sock_recv / sock_send flags, sock_shutdown how. */
#define SBX_SOCK_RECV_PEEK 0x04
#define SBX_SOCK_RECV_WAITALL 0x10
#define SBX_SOCK_RECV_FDS_TRUNCATED 0x01
#define SBX_SOCK_RECV_DATA_TRUNCATED 0x08
#define SBX_SHUT_RD 0x1
#define SBX_SHUT_WR 0x2

typedef struct { void *buf; size_t buf_len; } sbx_iovec_t;
typedef struct { const void *buf; size_t buf_len; } sbx_ciovec_t;

typedef struct {           /* 24 bytes */
  uint8_t fs_filetype;     /* @0 */
  uint16_t fs_flags;       /* @2 */
  uint64_t fs_rights_base; /* @8 */
  uint64_t fs_rights_inheriting; /* @16 */
} sbx_fdstat_t;

typedef struct {           /* 56 bytes */
  uint64_t st_dev;         /* @0 */
  uint64_t st_ino;         /* @8 */
  uint8_t st_filetype;     /* @16 */
  uint32_t st_nlink;       /* @20 */
  uint64_t st_size;        /* @24 */
  uint64_t st_atim;        /* @32 */
  uint64_t st_mtim;        /* @40 */
  uint64_t st_ctim;        /* @48 */
} sbx_filestat_t;

typedef struct {           /* 24 bytes, followed by d_namlen bytes of name */
  uint64_t d_next;
  uint64_t d_ino;
  uint32_t d_namlen;
  uint8_t d_type;
} sbx_dirent_t;

typedef struct {           /* 56 bytes */
  uint64_t userdata;       /* @0 */
  uint16_t unused;         /* @8 */
  uint8_t type;            /* @10 */
  union {                  /* @16 */
    struct { uint64_t identifier; uint32_t clock_id; uint64_t timeout; uint64_t precision; uint16_t flags; } clock;
    struct { uint32_t fd; uint16_t flags; } fd_readwrite;
    struct { uint32_t fd; } proc_terminate;
  } u;
} sbx_subscription_t;

typedef struct {           /* 32 bytes */
  uint64_t userdata;       /* @0 */
  uint16_t error;          /* @8 */
  uint8_t type;            /* @10 */
  union {                  /* @16 */
    struct { uint64_t nbytes; uint32_t unused; uint16_t flags; } fd_readwrite;
    struct { uint8_t unused[4]; uint8_t signal; uint32_t exitcode; } proc_terminate;
  } u;
} sbx_event_t;

typedef struct {           /* 20 bytes */
  const sbx_iovec_t *ri_data; size_t ri_data_len;
  sbx_fd_t *ri_fds; size_t ri_fds_len;
  uint16_t ri_flags;
} sbx_recv_in_t;

typedef struct {           /* 52 bytes */
  size_t ro_datalen; size_t ro_fdslen;
  uint8_t ro_unused[40];
  uint16_t ro_flags;
} sbx_recv_out_t;

typedef struct {           /* 20 bytes */
  const sbx_ciovec_t *si_data; size_t si_data_len;
  const sbx_fd_t *si_fds; size_t si_fds_len;
  uint16_t si_flags;
} sbx_send_in_t;

typedef struct { size_t so_datalen; } sbx_send_out_t;
`
