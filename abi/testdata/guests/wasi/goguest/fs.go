package main

// The fs mode: package os on whatever the program was granted. It expects
// the preopens /data (read-write) and /ro (read-only), each holding
// hello.txt ("hello\n"), and prints one line per step.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

func check(step string, err error) {
	switch {
	case err == nil:
		fmt.Printf("%s: ok\n", step)
	case errors.Is(err, syscall.ENOTCAPABLE):
		// Go's wasip1 port does not count ENOTCAPABLE as
		// fs.ErrPermission, so a program asks for it by name.
		fmt.Printf("%s: not capable\n", step)
	case errors.Is(err, fs.ErrPermission):
		fmt.Printf("%s: permission denied\n", step)
	case errors.Is(err, fs.ErrNotExist):
		fmt.Printf("%s: not exist\n", step)
	default:
		fmt.Printf("%s: %v\n", step, err)
	}
}

func files() {
	ents, err := os.ReadDir("/data")
	check("readdir", err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	fmt.Printf("names: %s\n", strings.Join(names, ","))

	b, err := os.ReadFile("/data/hello.txt")
	check("readfile", err)
	fmt.Printf("contents: %q\n", b)

	check("writefile", os.WriteFile("/data/out.txt", []byte("written by go\n"), 0o644))
	f, err := os.OpenFile("/data/out.txt", os.O_APPEND|os.O_WRONLY, 0)
	check("open-append", err)
	_, err = f.WriteString("and appended\n")
	check("append", err)
	check("close", f.Close())
	b, err = os.ReadFile("/data/out.txt")
	check("readback", err)
	fmt.Printf("out: %q\n", b)

	check("mkdirall", os.MkdirAll("/data/a/b/c", 0o755))
	check("rename", os.Rename("/data/out.txt", "/data/a/b/c/out.txt"))
	var walked []string
	check("walk", filepath.WalkDir("/data", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	}))
	sort.Strings(walked)
	fmt.Printf("walked: %s\n", strings.Join(walked, ","))
	fi, err := os.Stat("/data/a/b/c/out.txt")
	check("stat", err)
	if err == nil {
		fmt.Printf("size: %d mode-regular: %v\n", fi.Size(), fi.Mode().IsRegular())
	}
	check("removeall", os.RemoveAll("/data/a"))
	_, err = os.Stat("/data/a")
	check("gone", err)

	// Reading what was granted read-only works; changing it does not.
	b, err = os.ReadFile("/ro/hello.txt")
	check("ro-read", err)
	fmt.Printf("ro-contents: %q\n", b)
	check("ro-write", os.WriteFile("/ro/new.txt", []byte("x"), 0o644))
	check("ro-overwrite", os.WriteFile("/ro/hello.txt", []byte("x"), 0o644))
	check("ro-remove", os.Remove("/ro/hello.txt"))
	check("ro-mkdir", os.Mkdir("/ro/d", 0o755))

	// Escapes.
	check("symlink", os.Symlink("../../../../../../etc/passwd", "/data/escape"))
	_, err = os.ReadFile("/data/escape")
	check("symlink-escape", err)
	dir, err := os.Open("/data")
	check("open-dir", err)
	_, err = syscall.Openat(int(dir.Fd()), "../ro/hello.txt", syscall.O_RDONLY, 0)
	check("openat-dotdot", err)
	_, err = syscall.Openat(int(dir.Fd()), "/etc/passwd", syscall.O_RDONLY, 0)
	check("openat-absolute", err)
	_, err = os.ReadFile("/etc/passwd")
	check("ungranted-absolute", err)
	dir.Close()
}
