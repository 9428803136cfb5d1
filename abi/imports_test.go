package abi

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// readShape splits wasm and reads its shape, as Compile does.
func readShape(wasm []byte) (moduleShape, bool) {
	secs, err := splitSections(wasm)
	if err != nil {
		return moduleShape{}, false
	}
	s, err := secs.shape()
	return s, err == nil
}

// instrumentLoops splits wasm and rewrites it, as Compile does.
func instrumentLoops(wasm []byte) ([]byte, bool, error) {
	secs, err := splitSections(wasm)
	if err != nil {
		return nil, false, err
	}
	return secs.instrument()
}

// precheck splits wasm and checks its counts, as Compile does.
func precheck(wasm []byte) error {
	secs, err := splitSections(wasm)
	if err != nil {
		return err
	}
	_, err = secs.precheck()
	return err
}

// wat2wasm compiles src with wabt's wat2wasm and the given flags
// (default: --enable-all).
func wat2wasm(t testing.TB, src string, flags ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(flags) == 0 {
		flags = []string{"--enable-all"}
	}
	if b, err := exec.Command("wat2wasm", append(flags, "-o", out, in)...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

var shapeModules = []struct {
	name, wat string
	modules   []string
}{
	{"none", `(module (memory (export "memory") 1) (func (export "_start")))`, nil},
	{"wasi", `(module
		(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
		(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
		(memory (export "memory") 1) (func (export "_start")))`, []string{WASIModuleName}},
	{"every import kind", `(module
		(import "env" "t" (table 1 2 funcref))
		(import "env" "g" (global (mut i32)))
		(import "env" "m" (memory 1 10))
		(import "sandboxd" "fd_close" (func (param i32) (result i32)))
		(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
		(func (export "_start")))`, []string{"env", ModuleName, WASIModuleName}},
	{"every export kind", `(module
		(func $f) (table $t 1 funcref) (global $g i32 (i32.const 0))
		(memory $m 1 2)
		(export "_start" (func $f)) (export "t" (table $t)) (export "g" (global $g))
		(export "memory" (memory $m)) (export "other" (func $f)))`, nil},
	{"custom sections and no start", `(module (@custom "a" "xyz") (memory (export "mem") 1) (@custom "b" (after import) "q"))`, nil},
}

func TestReadShapeReadsImportModules(t *testing.T) {
	for _, tc := range shapeModules {
		t.Run(tc.name, func(t *testing.T) {
			wasm := wat2wasm(t, tc.wat)
			s, ok := readShape(wasm)
			if !ok {
				t.Fatal("readShape could not read a valid module")
			}
			if got := s.moduleNames(); !reflect.DeepEqual(got, tc.modules) {
				t.Errorf("module names = %q, want %q", got, tc.modules)
			}
		})
	}
}

// readShape and wazero agree on every function and memory import and
// export: they are what Compile's checks use.
func TestReadShapeAgreesWithWazero(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer r.Close(ctx)
	for _, tc := range shapeModules {
		t.Run(tc.name, func(t *testing.T) {
			wasm := wat2wasm(t, tc.wat)
			cm, err := r.CompileModule(ctx, wasm)
			if err != nil {
				t.Fatal(err)
			}
			s, ok := readShape(wasm)
			if !ok {
				t.Fatal("readShape could not read a valid module")
			}
			if got, want := normalShape(s), normalShape(shapeOf(cm)); !reflect.DeepEqual(got, want) {
				t.Errorf("readShape: %q\nwazero:    %q", got, want)
			}
		})
	}
}

// normalShape lists the function and memory imports and exports, sorted.
func normalShape(s moduleShape) []string {
	var l []string
	for _, im := range s.imports {
		if im.kind == externFunc || im.kind == externMemory {
			l = append(l, "import "+string('0'+im.kind)+" "+im.module+"."+im.name)
		}
	}
	for _, ex := range s.exports {
		if ex.kind == externFunc || ex.kind == externMemory {
			l = append(l, "export "+string('0'+ex.kind)+" "+ex.name)
		}
	}
	slices.Sort(l)
	return l
}

func TestReadShapeRefusesWhatItCannotRead(t *testing.T) {
	wasm := wat2wasm(t, shapeModules[2].wat)
	for i := 0; i < len(wasm); i++ {
		s, ok := readShape(wasm[:i])
		if !ok {
			continue
		}
		// A prefix that parses ends at a section boundary: what it read
		// is a prefix of the whole module's imports.
		whole, _ := readShape(wasm)
		if len(s.imports) > 0 && !reflect.DeepEqual(s.imports, whole.imports) {
			t.Fatalf("prefix of %d bytes read imports %v, the module has %v", i, s.imports, whole.imports)
		}
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x02\x00\x00\x00"), []byte("\x00asm\x01\x00\x00\x00\x02\x05\x01\x01m\x01f")} {
		if _, ok := readShape(bad); ok {
			t.Errorf("readShape(%q) = ok", bad)
		}
	}
}

func FuzzReadShape(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x07\x01\x01m\x01f\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x07\x0a\x01\x06_start\x00\x00"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		s, ok := readShape(wasm)
		if !ok {
			return
		}
		for _, im := range s.imports {
			if im.kind > externTag {
				t.Fatalf("import %s.%s of unknown kind %d accepted", im.module, im.name, im.kind)
			}
		}
		for _, ex := range s.exports {
			if ex.kind > externTag {
				t.Fatalf("export %s of unknown kind %d accepted", ex.name, ex.kind)
			}
		}
	})
}

// shapeOf asks wazero what cm imports and exports.
func shapeOf(cm wazero.CompiledModule) moduleShape {
	var s moduleShape
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		s.imports = append(s.imports, importEntry{module: mod, name: name, kind: externFunc})
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		s.imports = append(s.imports, importEntry{module: mod, name: name, kind: externMemory})
	}
	for name := range cm.ExportedMemories() {
		s.exports = append(s.exports, exportEntry{name: name, kind: externMemory})
	}
	for name := range cm.ExportedFunctions() {
		s.exports = append(s.exports, exportEntry{name: name, kind: externFunc})
	}
	return s
}
