package plural

import "testing"

// One takes the singular; any other count, none included, the plural.
func TestCountTakesTheSingularForOneOnly(t *testing.T) {
	for n, want := range map[int]string{0: "0 capabilities", 1: "1 capability", 2: "2 capabilities", 1000: "1000 capabilities", -1: "-1 capabilities"} {
		if got := Count(n, "capability", "capabilities"); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
