// Command launchonly launches one guest through a daemon and exits with its
// status, linking only the client library (go-capnp; no wazero, hcl or
// go-hclog): what a launch costs in a process that pays for nothing else.
// bench/startup.sh times it beside `sandboxd launch`. It lives under
// testdata, as the test guests do, because it is a measuring fixture, not
// something that ships: the import rules of docs/ARCHITECTURE.md (bench
// imports nothing of ours) hold for what ships.
//
//	launchonly SOCKET MODULE.wasm
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/client"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: launchonly SOCKET MODULE.wasm")
		os.Exit(2)
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "launchonly:", err)
		os.Exit(69)
	}
	defer c.Close()
	wasm, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "launchonly:", err)
		os.Exit(4)
	}
	g, err := c.Launch(ctx, client.LaunchRequest{Name: filepath.Base(os.Args[2]), Wasm: wasm, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "launchonly:", err)
		os.Exit(1)
	}
	st, err := g.Wait(ctx)
	g.Release()
	if err != nil {
		fmt.Fprintln(os.Stderr, "launchonly:", err)
		os.Exit(1)
	}
	c.Close()
	os.Exit(int(st.Code))
}
