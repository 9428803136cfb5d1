// gostdin reads its standard input when it is not a terminal, as a Go
// command that takes piped input does, and writes back how many bytes it
// read and what they were; on a terminal it says so and reads nothing.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	fi, err := os.Stdin.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stat stdin:", err)
		os.Exit(1)
	}
	if fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Println("terminal")
		return
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read stdin:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %q\n", len(b), b)
}
