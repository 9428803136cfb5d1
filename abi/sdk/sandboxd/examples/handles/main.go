//go:build wasip1

// Command handles prints what a guest was started with: its arguments,
// environment and named handles, and what each handle is (fd_describe).
//
//	sandboxd run --grant dir:./data=data:ro --env GREETING=hi handles.wasm a b
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() {
	st, err := sandboxd.StartupData()
	if err != nil {
		fmt.Fprintln(os.Stderr, "handles:", err)
		os.Exit(1)
	}
	fmt.Printf("args: %q\n", st.Args)
	keys := make([]string, 0, len(st.Env))
	for k := range st.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("env: %s=%s\n", k, st.Env[k])
	}
	names := make([]string, 0, len(st.Handles))
	for n := range st.Handles {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return st.Handles[names[i]] < st.Handles[names[j]] })
	for _, n := range names {
		fd := st.Handles[n]
		d, err := sandboxd.Describe(fd)
		if err != nil {
			fmt.Printf("handle %d %s: %v\n", fd, n, err)
			continue
		}
		fmt.Printf("handle %d %s: kind=%s edge=%s origin=%q base=%s\n", fd, n, d.Kind, d.Edge, d.Origin, d.Base)
	}
	// A named directory is an ordinary *os.File too.
	if f, err := sandboxd.File("data"); err == nil {
		ents, err := f.ReadDir(-1)
		if err != nil {
			fmt.Println("readdir:", err)
		}
		for _, e := range ents {
			fmt.Println("data entry:", e.Name())
		}
	}
}
