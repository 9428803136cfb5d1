// Command gofib is a GOOS=wasip1 benchmark guest: it computes fib(N)
// (argument 1, default 25) by naive recursion, a quarter of a million
// calls at 25, and prints it, so that a run's cost is mostly Go function
// calls, which the stack checks count.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func main() {
	n := 25
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	fmt.Println(fib(n))
}
