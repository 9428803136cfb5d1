//go:build wasip1

// Command store is the last stage of the example pipeline: it serves the
// Store interface, published as "store" on channel "pipeline", and writes
// what it is given into the directory granted to it as "out", the only
// writable directory in the pipeline.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
)

type store struct{}

func (store) Put(ctx context.Context, call pipelineapi.Store_put) error {
	key, err := call.Args().Key()
	if err != nil {
		return err
	}
	if key == "" || strings.ContainsAny(key, "/\\") || key == "." || key == ".." {
		return fmt.Errorf("store: key %q is not a plain file name", key)
	}
	value, err := call.Args().Value()
	if err != nil {
		return err
	}
	if err := os.WriteFile("/out/"+key, value, 0o644); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	fmt.Printf("store: stored %s\n", key)
	return nil
}

func main() {
	ctx := context.Background()
	c, err := peer.Connect(ctx)
	if err != nil {
		fail(err)
	}
	if err := c.Publish(ctx, "pipeline", "store", capnp.Client(pipelineapi.Store_ServerToClient(store{}))); err != nil {
		fail(err)
	}
	fmt.Println("store: serving")
	<-c.Done()
	fail(errors.New("the daemon closed the connection"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "store:", err)
	os.Exit(1)
}
