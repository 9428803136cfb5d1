//go:build wasip1

// Command gogrant waits on its supervisor channel for one granted handle,
// prints "received KIND NAME", then writes "tick\n" to it every
// millisecond until a write fails. It prints "revoked" and exits 0 if the
// failure is ENOTCAPABLE (the grant was revoked under it); any other
// failure is printed and exits 1.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func fail(what string, err error) {
	fmt.Printf("%s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	sup, err := sandboxd.Supervisor()
	if err != nil {
		fail("supervisor", err)
	}
	n, err := sup.RecvNotice()
	if err != nil {
		fail("receive", err)
	}
	if n.Event != "grant" || !n.HasFD {
		fail("receive", fmt.Errorf("notice %+v carries no granted handle", n))
	}
	fmt.Println("received", n.Kind, n.Name)
	f := os.NewFile(uintptr(n.FD), n.Name)
	for {
		if _, err := f.Write([]byte("tick\n")); err != nil {
			if sandboxd.IsNotCapable(err) {
				fmt.Println("revoked")
				os.Exit(0)
			}
			fail("write", err)
		}
		time.Sleep(time.Millisecond)
	}
}
