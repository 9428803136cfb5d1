package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// SendCap and Delegate name the guest's copy as the CLI and the control
// API would let it be named, and refuse any other name with an error that
// says what is wrong with it, sending nothing. They took any name: a
// 256 KiB one, or one with control characters or a "/".
func TestSendCapRefusesAHandleNameNoGrantCouldGive(t *testing.T) {
	s := newSupervisor(t)
	g, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &caps.Holder{ID: "test"}
	obj := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	defer s.k.Close(obj)
	for _, tc := range []struct{ name, want string }{
		{strings.Repeat("n", 256<<10), "is longer than 255 bytes"},
		{strings.Repeat("n", MaxGuestName+1), "is longer than 255 bytes"},
		{"bell\a", "contains a control character"},
		{"line\nbreak", "contains a control character"},
		{"a/b", `contains '/'`},
		{"..", `is "." or ".."`},
		{"\xff", "is not valid UTF-8"},
	} {
		_, err := g.SendCap(context.Background(), obj, tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "handle name") {
			t.Errorf("SendCap named %.40q: %v; want an error naming the handle name, saying %q", tc.name, err, tc.want)
		}
		_, err = g.Delegate(context.Background(), Delegation{From: obj, Name: tc.name, Keep: caps.RightFDRead})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Delegate named %.40q: %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
	if p := g.Pending(); len(p) != 0 {
		t.Fatalf("refused names sent %d capabilities to the guest", len(p))
	}
	// The copy takes its source's name when given none, and that name is
	// checked too.
	bad := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "tab\there", "test")
	defer s.k.Close(bad)
	if _, err := g.Delegate(context.Background(), Delegation{From: bad}); err == nil || !strings.Contains(err.Error(), "contains a control character") {
		t.Errorf("Delegate of a capability named %q under its own name: %v; want it refused", bad.Name(), err)
	}
	// The longest name a grant can give goes through.
	long := strings.Repeat("n", MaxGuestName)
	if c, err := g.SendCap(context.Background(), obj, long); err != nil || c.Name() != long {
		t.Fatalf("SendCap named with %d bytes: %v", MaxGuestName, err)
	}
}

// A delegation at launch names the guest's handle by the same rules, and
// a name it breaks is a SpecError: Launch took any name there too.
func TestLaunchRefusesADelegationNamedAsNoGrantCould(t *testing.T) {
	s := newSupervisor(t)
	h := &caps.Holder{ID: "test"}
	obj := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	defer s.k.Close(obj)
	bad := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "new\nline", "test")
	defer s.k.Close(bad)
	for _, d := range []Delegation{{From: obj, Name: "esc\x1b"}, {From: obj, Name: strings.Repeat("n", 4096)}, {From: bad}} {
		_, err := launchSpinAs(t, s, LaunchSpec{Delegations: []Delegation{d}})
		var spec *SpecError
		if !errors.As(err, &spec) || !strings.Contains(err.Error(), "handle name") {
			t.Errorf("launch delegating %s as %.40q: %v; want a SpecError naming the handle name", d.From.Name(), d.Name, err)
		}
	}
	// A directory given no name keeps the path a dir grant named it with.
	g, err := launchSpin(t, s, nil, "dir:"+t.TempDir()+"=/data")
	if err != nil {
		t.Fatal(err)
	}
	dir := handle(t, g, "/data")
	if _, err := launchSpinAs(t, s, LaunchSpec{Delegations: []Delegation{{From: dir}}}); err != nil {
		t.Fatalf("delegating a directory under its own name %q at launch: %v", dir.Name(), err)
	}
	if c, err := g.Delegate(context.Background(), Delegation{From: dir}); err != nil || c.Name() != "/data" {
		t.Fatalf("delegating a directory under its own name %q to a running guest: %v", dir.Name(), err)
	}
}
