//go:build !wasip1

package sandboxd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// cheaderWant is what testdata/cheader/calls.c prints: the calls that
// need no handle do what docs/ABI.md says (the thread and lock calls
// ENOSYS 52, argdata_get and fd_describe with no room ENOBUFS 42,
// proc_raise(0) and a type-0 fd_create1/2 EINVAL 28), and every call on
// a handle that is not open is EBADF 8.
const cheaderWant = `clock_res_get 0
clock_time_get 0
clock_time_get realtime after 2020 0
condvar_signal 52
lock_unlock 52
thread_create 52
thread_exit 52
thread_yield 0
random_get 0
random_get gave bytes 0
argdata_get 42
fd_describe 42
proc_raise 28
fd_close 8
fd_create1 28
fd_create2 28
fd_datasync 8
fd_dup 8
fd_pread 8
fd_pwrite 8
fd_read 8
fd_replace 8
fd_seek 8
fd_stat_get 8
fd_stat_put 8
fd_sync 8
fd_write 8
file_advise 8
file_allocate 8
file_create 8
file_link 8
file_open 8
file_readdir 8
file_readlink 8
file_rename 8
file_stat_fget 8
file_stat_fput 8
file_stat_get 8
file_stat_put 8
file_symlink 8
file_unlink 8
sock_accept 8
cap_revoke 8
cap_revocable 8
poll 0
poll event 8
proc_exec 8
proc_spawn 8
sock_recv 8
sock_send 8
sock_shutdown 8
done
`

// Every function sandboxd.h declares links against the host's module
// and answers as documented, from a freestanding C guest and from one
// built against wasi-libc (which imports WASI's calls as well).
func TestCHeaderDeclaresEveryCallTheHostExports(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"freestanding": abitest.C(t, "abi/sdk/sandboxd/testdata/cheader/calls.c"),
		"wasi-libc":    abitest.WASIC(t, "abi/sdk/sandboxd/testdata/cheader/calls.c"),
	} {
		st, out, errOut := runModule(t, "calls", wasm, nil, nil, nil)
		if st.Err() != nil || st.Code != 0 || out != cheaderWant {
			t.Errorf("%s: status %+v, stderr %q, stdout:\n%s\nwant:\n%s", name, st, errOut, out, cheaderWant)
		}
	}
}

// sandboxd.h is a header C and C++ programmers include as they are:
// strict C99 with every warning an error, and C++, where its functions
// have C linkage. It warned under -pedantic (_Noreturn is C11) and gave
// C++ mangled names.
func TestCHeaderCompilesAsStrictCAndAsCPlusPlus(t *testing.T) {
	inc := abitest.Path("abi/include")
	src := filepath.Join(t.TempDir(), "use.c")
	if err := os.WriteFile(src, []byte("#include <sandboxd.h>\nvoid use(void) { sbx_proc_exit(0); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"clang", "-x", "c", "-std=c99", "-pedantic", "-Werror", "-Wall", "-Wextra"},
		{"clang", "-x", "c", "-std=c11", "-pedantic", "-Werror", "-Wall", "-Wextra"},
		{"clang", "-x", "c++", "-std=c++17", "-pedantic", "-Werror", "-Wall", "-Wextra"},
	} {
		obj := filepath.Join(t.TempDir(), "use.o")
		cmd := exec.Command(args[0], append(args[1:], "--target=wasm32", "-nostdlib", "-c", "-I", inc, "-o", obj, src)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
			continue
		}
		sym, err := exec.Command("wasm-objdump", "-x", obj).CombinedOutput()
		if err != nil {
			t.Fatalf("wasm-objdump: %v\n%s", err, sym)
		}
		if !strings.Contains(string(sym), "<sbx_proc_exit> <- sandboxd.proc_exit") {
			t.Errorf("%v: the object does not import sandboxd.proc_exit as sbx_proc_exit, with C linkage:\n%s", args, sym)
		}
	}
}
