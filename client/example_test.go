package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/sandboxd/sandboxd/client"
)

// A program that launches a guest in the daemon with one read-only
// directory, streams its output, gives it a second handle while it runs,
// and takes that handle back.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "") // "" is client.DefaultSocketPath()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	wasm, err := os.ReadFile("prog.wasm")
	if err != nil {
		log.Fatal(err)
	}
	g, err := c.Launch(ctx, client.LaunchRequest{
		Name:   "prog.wasm",
		Wasm:   wasm,
		Grants: []string{"dir:/srv/reports=reports:ro"},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Release() // kills the guest if it still runs: it was not detached

	// The guest receives the new handle on its "supervisor" channel.
	granted, err := g.Grant(ctx, "file:/var/log/app.log=log:ro")
	if err != nil {
		log.Fatal(err)
	}
	receipt, err := c.Revoke(ctx, granted.ID, "no longer needed")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("revoked", len(receipt.Revoked), "capabilities")

	st, err := g.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit", st.Code)
}

// Capabilities the client holds can be narrowed and passed on; every step
// is an edge in the daemon's derivation tree, and revoking the root cuts
// off everything derived from it.
func ExampleCap_Restrict() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	data, err := c.Mint(ctx, "dir:/srv/data=data")
	if err != nil {
		log.Fatal(err)
	}
	defer data.Release()
	const fileOpen, readdir, read = 1 << 14, 1 << 15, 1 << 1 // CloudABI rights (package caps)
	readOnly, err := data.Restrict(ctx, fileOpen|readdir, read)
	if err != nil {
		log.Fatal(err)
	}
	defer readOnly.Release()

	wasm, _ := os.ReadFile("prog.wasm")
	g, err := c.Launch(ctx, client.LaunchRequest{
		Name: "prog.wasm", Wasm: wasm,
		Caps: []client.Delegation{{Cap: readOnly, Name: "data"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Release()

	if _, err := data.Revoke(ctx, "done"); err != nil { // the guest's copy dies too
		log.Fatal(err)
	}
}
