// Command hello is the static Go hello world that bench/startup.sh times
// `sandboxd help` against: the least a Go program pays to start.
package main

import "fmt"

func main() { fmt.Println("hello, world") }
