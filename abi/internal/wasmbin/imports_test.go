package wasmbin

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// readShape splits wasm and reads its shape, as the runtime does.
func readShape(wasm []byte) (Shape, bool) {
	secs, err := Split(wasm)
	if err != nil {
		return Shape{}, false
	}
	s, err := secs.shape()
	return s, err == nil
}

// instrumentLoops splits wasm and rewrites it, as the runtime does.
func instrumentLoops(wasm []byte) ([]byte, bool, error) {
	secs, err := Split(wasm)
	if err != nil {
		return nil, false, err
	}
	return secs.Instrument(Checks{Loops: true, Stack: true})
}

// precheck splits wasm and checks its counts, as the runtime does.
func precheck(wasm []byte) error {
	secs, err := Split(wasm)
	if err != nil {
		return err
	}
	_, err = secs.Precheck()
	return err
}

var shapeModules = []struct {
	name, wat string
	modules   []string
}{
	{"none", `(module (memory (export "memory") 1) (func (export "_start")))`, nil},
	{"wasi", `(module
		(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
		(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
		(memory (export "memory") 1) (func (export "_start")))`, []string{"wasi_snapshot_preview1"}},
	{"every import kind", `(module
		(import "env" "t" (table 1 2 funcref))
		(import "env" "g" (global (mut i32)))
		(import "env" "m" (memory 1 10))
		(import "sandboxd" "fd_close" (func (param i32) (result i32)))
		(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
		(func (export "_start")))`, []string{"env", "sandboxd", "wasi_snapshot_preview1"}},
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
			wasm := abitest.WATText(t, tc.wat)
			s, ok := readShape(wasm)
			if !ok {
				t.Fatal("readShape could not read a valid module")
			}
			if got := s.ModuleNames(); !reflect.DeepEqual(got, tc.modules) {
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
			wasm := abitest.WATText(t, tc.wat)
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
func normalShape(s Shape) []string {
	var l []string
	for _, im := range s.Imports {
		if im.Kind == ExternFunc || im.Kind == ExternMemory {
			l = append(l, "import "+string('0'+im.Kind)+" "+im.Module+"."+im.Name)
		}
	}
	for _, ex := range s.Exports {
		if ex.Kind == ExternFunc || ex.Kind == ExternMemory {
			l = append(l, "export "+string('0'+ex.Kind)+" "+ex.Name)
		}
	}
	slices.Sort(l)
	return l
}

func TestReadShapeRefusesWhatItCannotRead(t *testing.T) {
	wasm := abitest.WATText(t, shapeModules[2].wat)
	for i := 0; i < len(wasm); i++ {
		s, ok := readShape(wasm[:i])
		if !ok {
			continue
		}
		// A prefix that parses ends at a section boundary: what it read
		// is a prefix of the whole module's imports.
		whole, _ := readShape(wasm)
		if len(s.Imports) > 0 && !reflect.DeepEqual(s.Imports, whole.Imports) {
			t.Fatalf("prefix of %d bytes read imports %v, the module has %v", i, s.Imports, whole.Imports)
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
		for _, im := range s.Imports {
			if im.Kind > externTag {
				t.Fatalf("import %s.%s of unknown kind %d accepted", im.Module, im.Name, im.Kind)
			}
		}
		for _, ex := range s.Exports {
			if ex.Kind > externTag {
				t.Fatalf("export %s of unknown kind %d accepted", ex.Name, ex.Kind)
			}
		}
	})
}

// shapeOf asks wazero what cm imports and exports.
func shapeOf(cm wazero.CompiledModule) Shape {
	var s Shape
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		s.Imports = append(s.Imports, Import{Module: mod, Name: name, Kind: ExternFunc})
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		s.Imports = append(s.Imports, Import{Module: mod, Name: name, Kind: ExternMemory})
	}
	for name := range cm.ExportedMemories() {
		s.Exports = append(s.Exports, Export{Name: name, Kind: ExternMemory})
	}
	for name := range cm.ExportedFunctions() {
		s.Exports = append(s.Exports, Export{Name: name, Kind: ExternFunc})
	}
	return s
}
