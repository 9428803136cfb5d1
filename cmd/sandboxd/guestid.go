package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
)

// findGuest opens the guest that ref names: its id, or, as docker and git
// take them, a prefix of exactly one id among the guests the caller may
// see ("g-4b29", or "4b29" without the "g-").
func findGuest(ctx context.Context, cl *client.Client, ref string) (*client.Guest, error) {
	g, err := cl.Guest(ctx, ref)
	if err == nil || ref == "" {
		return g, err
	}
	guests, lerr := cl.List(ctx)
	if lerr != nil {
		return nil, err
	}
	var matches []string
	for _, gi := range guests {
		if strings.HasPrefix(gi.ID, ref) || strings.HasPrefix(gi.ID, "g-"+ref) {
			matches = append(matches, gi.ID)
		}
	}
	switch len(matches) {
	case 0:
		if isGuestID(ref) {
			// Guests run in the daemon's process: an id no guest of this
			// daemon has was removed from its list, or is one of an
			// earlier daemon's. audit log reads the log in its --state,
			// and the daemon does not say which directory it was run
			// with: the hint names how to find it rather than a default
			// that may be another's.
			return nil, fmt.Errorf("%w; a guest removed from the list (sandboxd rm, prune), or one of an earlier daemon (it ended when that daemon stopped), is in the audit log: `sandboxd audit log --state DIR --guest %s` has its record, DIR the daemon's state directory (serve --state, named in the daemon's `serving` log line; %s if it was run as this user without --state)", err, ref, daemon.DefaultStateDir())
		}
		return nil, err
	case 1:
		return cl.Guest(ctx, matches[0])
	}
	sort.Strings(matches)
	return nil, fmt.Errorf("%q is the start of %d guest ids (%s): give more of it", ref, len(matches), strings.Join(matches, ", "))
}

// isGuestID reports whether ref is a whole guest id as the daemon makes
// them: "g-" and 12 lower-case hex digits.
func isGuestID(ref string) bool {
	hexPart, ok := strings.CutPrefix(ref, "g-")
	if !ok || len(hexPart) != 12 {
		return false
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
