package server

import "time"

// HangGuard bounds the waits in this package's tests that only a hang
// could reach. Each such wait is for an event (a guest ending, a client
// answered, a connection closed); the bound is far beyond what any load
// makes of a step here, and only turns a hung test into a failure that
// names it, before the suite's timeout.
const HangGuard = 3 * time.Minute
