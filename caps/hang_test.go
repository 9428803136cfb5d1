package caps

import "time"

// hangGuard bounds the waits in these tests that only a hang could reach.
// Each waits for an event (a wake-up, a goroutine ending); the bound is far
// beyond what any load makes of it, and only turns a hung test into a
// failure that names it, before the suite's timeout.
const hangGuard = 3 * time.Minute
