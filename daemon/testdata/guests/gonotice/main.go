//go:build wasip1

// Command gonotice reads the notices on its supervisor channel with the Go
// SDK's RecvNotice and prints one line for each: its event and kind, how
// many bytes its name has, and whether a handle came with it (which it
// closes). A notice RecvNotice fails on is printed and ends it with exit
// code 1.
package main

import (
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

func main() {
	sup, err := sandboxd.Supervisor()
	if err != nil {
		fmt.Println("supervisor:", err)
		os.Exit(1)
	}
	for {
		n, err := sup.RecvNotice()
		if err != nil {
			fmt.Println("receive:", err)
			os.Exit(1)
		}
		fmt.Printf("notice %s %s name=%d bytes handle=%v\n", n.Event, n.Kind, len(n.Name), n.HasFD)
		if n.HasFD {
			_ = sandboxd.Close(n.FD)
		}
	}
}
