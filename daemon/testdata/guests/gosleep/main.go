// Command gosleep is a GOOS=wasip1 test guest that stays idle: it prints
// "ready" and then sleeps (time.Sleep, a WASI poll_oneoff on a clock)
// until it is killed. BenchmarkIdleGoGuests launches many to measure what
// an idle Go guest costs the daemon.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}
