//go:build wasip1

// Command workdir reads data/a.txt by a path relative to its working
// directory and prints it, or the error.
package main

import (
	"fmt"
	"os"
)

func main() {
	b, err := os.ReadFile("data/a.txt")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Print(string(b))
}
