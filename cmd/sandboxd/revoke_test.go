package main

import "testing"

// The line revoke prints names the holders the receipt names and counts
// the holders of other users it does not name: it printed the names
// alone, so a receipt that left holders out read as if they had none.
func TestRevokeSaysHowManyHoldersOfOtherUsersItDoesNotName(t *testing.T) {
	for _, c := range []struct {
		holders []string
		others  int
		want    string
	}{
		{[]string{"g-1", "conn-2"}, 0, "g-1, conn-2"},
		{[]string{"g-1"}, 2, "g-1 and 2 holders of other users"},
		{nil, 1, "1 holder of other users"},
	} {
		if got := heldBy(c.holders, c.others); got != c.want {
			t.Errorf("heldBy(%q, %d) = %q; want %q", c.holders, c.others, got, c.want)
		}
	}
}
