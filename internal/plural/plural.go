// Package plural writes counts in the messages the daemon and the CLI
// show people.
package plural

import "strconv"

// Count is n followed by the noun for it: Count(1, "grant", "grants") is
// "1 grant", Count(2, …) "2 grants", Count(0, …) "0 grants".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
