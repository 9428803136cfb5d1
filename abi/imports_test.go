package abi

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestImportModuleNames(t *testing.T) {
	for _, tc := range []struct {
		name, wat string
		want      []string
	}{
		{"none", `(module (memory (export "memory") 1) (func (export "_start")))`, nil},
		{"wasi", `(module
			(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
			(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
			(memory (export "memory") 1) (func (export "_start")))`, []string{WASIModuleName}},
		{"both, after non-function imports", `(module
			(import "env" "t" (table 1 2 funcref))
			(import "env" "g" (global (mut i32)))
			(import "env" "m" (memory 1 10))
			(import "sandboxd" "fd_close" (func (param i32) (result i32)))
			(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
			(func (export "_start")))`, []string{"env", ModuleName, WASIModuleName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
			if err := os.WriteFile(src, []byte(tc.wat), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command("wat2wasm", "-o", out, src).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm: %v\n%s", err, b)
			}
			wasm, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := importModuleNames(wasm); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("importModuleNames = %q, want %q", got, tc.want)
			}
			// Every truncation is read without a panic, and yields at
			// most the names of the whole module.
			for i := range wasm {
				for _, n := range importModuleNames(wasm[:i]) {
					if !contains(tc.want, n) {
						t.Fatalf("truncated at %d: %q is not an import", i, n)
					}
				}
			}
		})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func FuzzImportModuleNames(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x07\x01\x01m\x01f\x00\x00"))
	f.Fuzz(func(t *testing.T, wasm []byte) { importModuleNames(wasm) })
}
