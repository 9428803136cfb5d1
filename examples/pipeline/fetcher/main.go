//go:build wasip1

// Command fetcher is the first stage of the example pipeline. It holds
// the documents, a read-only directory granted as "input", and lends the
// parser one subdirectory of it (its first argument), narrowed to
// reading, in a Cap'n Proto call; then it asks the parser to parse each
// document in it, in name order.
//
// With -step it reads one line from stdin before each document, so that
// a test (or a person) can act between two calls.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
)

func main() {
	args := os.Args[1:]
	step := len(args) > 0 && args[0] == "-step"
	if step {
		args = args[1:]
	}
	if len(args) != 1 {
		fail(fmt.Errorf("usage: fetcher [-step] SUBDIR (a directory under the input grant)"))
	}
	sub := "/input/" + args[0]
	entries, err := os.ReadDir(sub)
	if err != nil {
		fail(err)
	}
	d, err := os.Open(sub)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	c, err := peer.Connect(ctx)
	if err != nil {
		fail(err)
	}
	// Lend it read-only: whatever the handle holds of the read-only rights.
	desc, err := sandboxd.Describe(uint32(d.Fd()))
	if err != nil {
		fail(err)
	}
	ro := &peer.Rights{Base: desc.Base & sandboxd.RightsReadOnlyDir, Inheriting: desc.Inheriting & sandboxd.RightsReadOnlyFile}
	h, err := c.HandOver(ctx, uint32(d.Fd()), ro)
	if err != nil {
		fail(err)
	}
	svc, err := c.Obtain(ctx, "pipeline", "parser")
	if err != nil {
		fail(err)
	}
	p := pipelineapi.Parser(svc)
	f, release := p.Open(ctx, func(a pipelineapi.Parser_open_Params) error { return a.SetDir(h.AddRef()) })
	_, err = f.Struct()
	release()
	if err != nil {
		fail(err)
	}
	in := bufio.NewReader(os.Stdin)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if step {
			if _, err := in.ReadString('\n'); err != nil {
				fail(fmt.Errorf("stdin ended before %s", e.Name()))
			}
		}
		if err := parse(ctx, p, e.Name()); err != nil {
			fmt.Printf("fetcher: parse %s failed: %v\n", e.Name(), err)
			os.Exit(1)
		}
	}
	fmt.Println("fetcher: done")
}

func parse(ctx context.Context, p pipelineapi.Parser, name string) error {
	f, release := p.Parse(ctx, func(a pipelineapi.Parser_parse_Params) error { return a.SetName(name) })
	defer release()
	res, err := f.Struct()
	if err != nil {
		return err
	}
	fmt.Printf("fetcher: parsed %s: %d words\n", name, res.Words())
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fetcher:", err)
	os.Exit(1)
}
