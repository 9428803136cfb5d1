package client

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// ownerlessInfo is a socket's file whose owner cannot be read: Sys has
// no Stat_t.
type ownerlessInfo struct{}

func (ownerlessInfo) Name() string       { return "sandboxd.sock" }
func (ownerlessInfo) Size() int64        { return 0 }
func (ownerlessInfo) Mode() os.FileMode  { return os.ModeSocket | 0o600 }
func (ownerlessInfo) ModTime() time.Time { return time.Time{} }
func (ownerlessInfo) IsDir() bool        { return false }
func (ownerlessInfo) Sys() any           { return nil }

// A socket whose owner cannot be read is said to have an unknown owner,
// not uid -1, which no one can run as.
func TestSocketDeniedWithTheOwnerUnknown(t *testing.T) {
	msg := socketDenied("/run/sandboxd.sock", ownerlessInfo{}).Error()
	if strings.Contains(msg, "-1") {
		t.Errorf("the error names uid -1: %s", msg)
	}
	if want := "its owner could not be read"; !strings.Contains(msg, want) {
		t.Errorf("the error: %s\nwant it to say %q", msg, want)
	}
}

// A socket whose owner is known is named by its uid.
func TestSocketDeniedNamesTheOwner(t *testing.T) {
	fi, err := os.Stat(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	msg := socketDenied("/run/sandboxd.sock", fi).Error()
	if want := fmt.Sprintf("belongs to uid %d", os.Geteuid()); !strings.Contains(msg, want) {
		t.Errorf("the error: %s\nwant it to say %q", msg, want)
	}
}
