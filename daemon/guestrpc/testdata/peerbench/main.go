//go:build wasip1

// Command peerbench measures Cap'n Proto calls between two guests through
// the daemon. "peerbench serve" publishes a Store and a Parser on channel
// "bench" (put stores nothing; open takes the handle and releases it).
// "peerbench call N" obtains both, makes N puts and then N opens, each
// carrying the same directory handle (granted as "docs"), and prints the
// latency of each kind:
//
//	put N p50_ns p99_ns
//	open N p50_ns p99_ns
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
)

type server struct{}

func (server) Put(context.Context, pipelineapi.Store_put) error      { return nil }
func (server) Open(context.Context, pipelineapi.Parser_open) error   { return nil }
func (server) Parse(context.Context, pipelineapi.Parser_parse) error { return nil }

func main() {
	ctx := context.Background()
	c, err := peer.Connect(ctx)
	check(err)
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		check(c.Publish(ctx, "bench", "store", capnp.Client(pipelineapi.Store_ServerToClient(server{}))))
		check(c.Publish(ctx, "bench", "parser", capnp.Client(pipelineapi.Parser_ServerToClient(server{}))))
		fmt.Println("serving")
		<-c.Done()
		return
	}
	n, err := strconv.Atoi(os.Args[2])
	check(err)
	st, err := c.Obtain(ctx, "bench", "store")
	check(err)
	pr, err := c.Obtain(ctx, "bench", "parser")
	check(err)
	store, parser := pipelineapi.Store(st), pipelineapi.Parser(pr)
	dir, ok := sandboxd.Handle("docs")
	if !ok {
		check(fmt.Errorf("no docs handle"))
	}
	h, err := c.HandOver(ctx, dir, nil)
	check(err)
	report("put", n, func() error {
		f, rel := store.Put(ctx, func(a pipelineapi.Store_put_Params) error { return a.SetKey("k") })
		defer rel()
		_, err := f.Struct()
		return err
	})
	report("open", n, func() error {
		f, rel := parser.Open(ctx, func(a pipelineapi.Parser_open_Params) error { return a.SetDir(h.AddRef()) })
		defer rel()
		_, err := f.Struct()
		return err
	})
}

// report times n calls of call and prints their median and 99th percentile.
func report(name string, n int, call func() error) {
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		check(call())
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	fmt.Printf("%s %d %d %d\n", name, n, d[n/2], d[n*99/100])
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}
