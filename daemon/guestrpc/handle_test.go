package guestrpc

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/policies"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// readOnlyDir is what a directory handle keeps when narrowed to reading.
const (
	readOnlyDir  = caps.RightFileOpen | caps.RightFileReaddir | caps.RightFileStatFGet
	readOnlyFile = readOnlyDir | caps.RightFDRead | caps.RightFDSeek
)

// parser is a Parser a test peer serves: open installs the handle it is
// given through its own GuestSupervisor and reports the fd.
type parser struct {
	self      guest.GuestSupervisor
	installed chan installResult
}

type installResult struct {
	fd  uint32
	err error
}

func (p *parser) Open(ctx context.Context, call pipelineapi.Parser_open) error {
	call.Go()
	dir := call.Args().Dir()
	f, rel := p.self.Install(ctx, func(a guest.GuestSupervisor_install_Params) error {
		return a.SetHandle(dir.AddRef())
	})
	defer rel()
	res, err := f.Struct()
	if err != nil {
		p.installed <- installResult{err: err}
		return err
	}
	p.installed <- installResult{fd: res.Fd()}
	return nil
}

func (p *parser) Parse(ctx context.Context, call pipelineapi.Parser_parse) error { return nil }

// handOver wraps the peer's fd, narrowed to base and inheriting.
func handOver(t *testing.T, p *testPeer, fd uint32, base, inh caps.Rights) (guest.GuestHandle, error) {
	t.Helper()
	f, rel := p.sup.HandOver(testCtx(t), func(a guest.GuestSupervisor_handOver_Params) error {
		a.SetFd(fd)
		a.SetNarrow(true)
		a.SetBase(uint64(base))
		a.SetInheriting(uint64(inh))
		return nil
	})
	defer rel()
	res, err := f.Struct()
	if err != nil {
		return guest.GuestHandle{}, err
	}
	return res.Handle().AddRef(), nil
}

// lendDir has giver pass its handle dirFD, narrowed to read-only, to
// receiver's Parser in a call; receiver installs it. It returns the call's
// error and the receiver's install.
func lendDir(t *testing.T, giver, receiver *testPeer, dirFD uint32) (installResult, error) {
	t.Helper()
	pr := &parser{self: receiver.sup, installed: make(chan installResult, 1)}
	psvc := pipelineapi.Parser_ServerToClient(pr)
	publishParser(t, receiver, psvc)
	remote := obtainParser(t, giver)
	defer remote.Release()
	h, err := handOver(t, giver, dirFD, readOnlyDir, readOnlyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	f, rel := remote.Open(testCtx(t), func(a pipelineapi.Parser_open_Params) error { return a.SetDir(h.AddRef()) })
	defer rel()
	_, err = f.Struct()
	select {
	case r := <-pr.installed:
		return r, err
	default:
		return installResult{}, err
	}
}

func publishParser(t *testing.T, p *testPeer, svc pipelineapi.Parser) {
	t.Helper()
	f, rel := p.sup.Publish(testCtx(t), func(a guest.GuestSupervisor_publish_Params) error {
		_ = a.SetChannel("jobs")
		_ = a.SetName("parser")
		return a.SetService(capnp.Client(svc.AddRef()))
	})
	defer rel()
	if _, err := f.Struct(); err != nil {
		t.Fatal(err)
	}
}

func obtainParser(t *testing.T, p *testPeer) pipelineapi.Parser {
	t.Helper()
	f, rel := p.sup.Obtain(testCtx(t), func(a guest.GuestSupervisor_obtain_Params) error {
		_ = a.SetChannel("jobs")
		return a.SetName("parser")
	})
	defer rel()
	res, err := f.Struct()
	if err != nil {
		t.Fatal(err)
	}
	return pipelineapi.Parser(res.Service().AddRef())
}

func TestHandlePassedInACallIsANarrowedChildThatDiesWithTheGivers(t *testing.T) {
	h := newHarness(t, Limits{})
	dir := t.TempDir()
	fetcher := h.peer(t, "chan:jobs", "dir:"+dir+"=docs")
	parserPeer := h.peer(t, "chan:jobs")
	r, err := lendDir(t, fetcher, parserPeer, fetcher.fd(t, "docs"))
	if err != nil || r.err != nil {
		t.Fatalf("open: %v, install: %v", err, r.err)
	}
	got, err := parserPeer.g.Handle(r.fd)
	if err != nil {
		t.Fatal(err)
	}
	base, inh := got.Rights()
	if !base.Subset(readOnlyDir) || !inh.Subset(readOnlyFile) || got.Check(caps.RightFileCreateFile, 0) == nil {
		t.Fatalf("installed handle has rights %v / %v: wider than the read-only ones handed over", base, inh)
	}
	// Its ancestry goes back to the fetcher's grant through a delegate edge
	// that records the call.
	grant, _ := fetcher.g.Handle(fetcher.fd(t, "docs"))
	delegated := false
	for c := got; c != nil; c = c.Parent() {
		if c.Edge() == caps.EdgeDelegate && strings.Contains(c.Origin(), "passed in a call") {
			delegated = true
		}
		if c.Parent() == nil && c != grant {
			t.Fatalf("installed handle descends from %s, not from the fetcher's grant %s", c.ID(), grant.ID())
		}
	}
	if !delegated {
		t.Fatal("no delegate edge recording the call between the fetcher's grant and the parser's handle")
	}
	if _, err := h.sup.Revoke(grant.ID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := got.Check(caps.RightFileOpen, 0); err != caps.ENOTCAPABLE {
		t.Fatalf("parser's handle after the fetcher's grant was revoked: %v, want ENOTCAPABLE", err)
	}
}

func TestInstallRefusesAHandleHeldByAnotherGuest(t *testing.T) {
	h := newHarness(t, Limits{})
	dir := t.TempDir()
	a := h.peer(t, "dir:"+dir+"=docs")
	hd, err := handOver(t, a, a.fd(t, "docs"), readOnlyDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Release()
	// The GuestHandle is a's; b receiving it other than through a call
	// (here: the test hands b's connection the object) cannot install it.
	b := h.peer(t)
	f, rel := b.sup.Install(testCtx(t), func(p guest.GuestSupervisor_install_Params) error { return p.SetHandle(hd.AddRef()) })
	defer rel()
	if _, err := f.Struct(); err == nil {
		t.Fatal("a guest installed a handle it was never given")
	}
}

func TestHandOverNeverWidensRights(t *testing.T) {
	h := newHarness(t, Limits{})
	dir := t.TempDir()
	a := h.peer(t, "dir:"+dir+"=docs:ro")
	_, err := handOver(t, a, a.fd(t, "docs"), readOnlyDir|caps.RightFileCreateFile, 0)
	if err == nil || !strings.Contains(err.Error(), "not all held") {
		t.Fatalf("handOver asking for file_create on a read-only directory: %v", err)
	}
}

func TestPolicyDenialFailsTheCallWithTheRule(t *testing.T) {
	h := newHarness(t, Limits{})
	dir := t.TempDir()
	p, err := policies.Parse("test.hcl", []byte(fmt.Sprintf(`
resource "chan" "jobs" {}
grant "docs" {
  resources = ["dir:%s", "chan:jobs"]
  subject {
    uids = [%d]
  }
}
deny "keep-docs" {
  on        = ["delegate"]
  resources = ["dir:%s"]
}
`, dir, os.Getuid(), dir)))
	if err != nil {
		t.Fatal(err)
	}
	h.sup.SetPolicy(p)
	fetcher := h.peer(t, "chan:jobs", "dir:"+dir+"=docs")
	parserPeer := h.peer(t, "chan:jobs")
	r, err := lendDir(t, fetcher, parserPeer, fetcher.fd(t, "docs"))
	if err == nil || !strings.Contains(err.Error(), "keep-docs") {
		t.Fatalf("call carrying a handle the policy keeps: %v (install %+v); want an exception naming the rule", err, r)
	}
}
