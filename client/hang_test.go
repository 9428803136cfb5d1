package client_test

import "time"

// hangGuard bounds the waits in these tests that only a hang could reach.
// Each waits for an event (a call returning, a connection closing); the
// bound is far beyond what any load makes of it, and only turns a hung
// test into a failure that names it, before the suite's timeout.
const hangGuard = 3 * time.Minute
