//go:build wasip1

// Command parser is the middle stage of the example pipeline: it serves
// the Parser interface, published as "parser" on channel "pipeline". It
// holds nothing of its own but the channel: the directory it reads is
// lent to it by the fetcher in a call (Parser.open), read-only, and what
// it makes of each document goes to the store's Put. A store that goes
// away (its guest exited) is obtained again, in the background, as soon as
// a new one is published: the put that found it gone fails, the next ones
// go to the new store.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd/peer"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
)

type parser struct {
	c *peer.Conn

	mu          sync.Mutex
	store       pipelineapi.Store
	reobtaining bool // a goroutine is obtaining the store again
	dir         uint32
	has         bool
}

func (p *parser) Open(ctx context.Context, call pipelineapi.Parser_open) error {
	call.Go()
	fd, err := p.c.Install(ctx, call.Args().Dir())
	if err != nil {
		return fmt.Errorf("parser: install the directory: %w", err)
	}
	p.mu.Lock()
	p.dir, p.has = fd, true
	p.mu.Unlock()
	fmt.Printf("parser: lent a directory (fd %d)\n", fd)
	// Show what the lent handle does not allow.
	if _, err := sandboxd.OpenAt(fd, "../secret.txt", 0, sandboxd.RightFDRead, 0); err != nil {
		fmt.Printf("parser: outside the directory: %s\n", describe(err))
	}
	if _, err := sandboxd.OpenFileAt(fd, "scribble.txt", true); err != nil {
		fmt.Printf("parser: writing into it: %s\n", describe(err))
	}
	return nil
}

func (p *parser) Parse(ctx context.Context, call pipelineapi.Parser_parse) error {
	call.Go()
	name, err := call.Args().Name()
	if err != nil {
		return err
	}
	words, err := p.read(name)
	if err != nil {
		fmt.Printf("parser: read %s: %s\n", name, describe(err))
		return fmt.Errorf("parser: read %s: %s", name, describe(err))
	}
	store := p.currentStore()
	f, release := store.Put(ctx, func(a pipelineapi.Store_put_Params) error {
		if err := a.SetKey(name); err != nil {
			return err
		}
		return a.SetValue(fmt.Appendf(nil, "%s: %d words\n", name, words))
	})
	defer release()
	if _, err := f.Struct(); err != nil {
		fmt.Printf("parser: put %s: %v\n", name, err)
		if capnp.IsDisconnected(err) {
			p.reobtain(store) // the store's guest has gone: find its successor
		}
		return fmt.Errorf("parser: put %s: %w", name, err)
	}
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	res.SetWords(uint32(words))
	return nil
}

func (p *parser) currentStore() pipelineapi.Store {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.store
}

// reobtain obtains the store again, in the background, to replace gone
// (once: calls while one is under way do nothing). Obtain waits until a
// store is published again.
func (p *parser) reobtain(gone pipelineapi.Store) {
	p.mu.Lock()
	if p.reobtaining || p.store != gone {
		p.mu.Unlock()
		return
	}
	p.reobtaining = true
	p.mu.Unlock()
	go func() {
		st, err := p.c.Obtain(context.Background(), "pipeline", "store")
		if err != nil {
			fail(fmt.Errorf("obtaining the store again: %w", err))
		}
		p.mu.Lock()
		old := p.store
		p.store, p.reobtaining = pipelineapi.Store(st), false
		p.mu.Unlock()
		old.Release()
		fmt.Println("parser: obtained the store again")
	}()
}

// read counts the words of name in the lent directory.
func (p *parser) read(name string) (int, error) {
	p.mu.Lock()
	dir, ok := p.dir, p.has
	p.mu.Unlock()
	if !ok {
		return 0, errors.New("no directory lent yet: call open first")
	}
	f, err := sandboxd.OpenFileAt(dir, name, false)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	return len(bytes.Fields(b)), nil
}

// describe says why a handle call failed, naming revocation plainly.
func describe(err error) string {
	if sandboxd.IsNotCapable(err) {
		return "not capable (ENOTCAPABLE): the handle lacks the right, the path leaves its directory, or it was revoked"
	}
	return err.Error()
}

func main() {
	ctx := context.Background()
	c, err := peer.Connect(ctx)
	if err != nil {
		fail(err)
	}
	st, err := c.Obtain(ctx, "pipeline", "store")
	if err != nil {
		fail(err)
	}
	p := &parser{c: c, store: pipelineapi.Store(st)}
	if err := c.Publish(ctx, "pipeline", "parser", capnp.Client(pipelineapi.Parser_ServerToClient(p))); err != nil {
		fail(err)
	}
	fmt.Println("parser: serving")
	<-c.Done()
	fail(errors.New("the daemon closed the connection"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "parser:", err)
	os.Exit(1)
}
