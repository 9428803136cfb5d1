package daemon

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseGrant checks the grant parser on arbitrary text: it never
// panics; a rejection is a one-line *GrantSyntaxError; and whatever it
// accepts has a guest name valid for its kind and a canonical text
// (Grant.String) that parses back to the same grant and is its own
// canonical text.
func FuzzParseGrant(f *testing.F) {
	for _, s := range []string{
		"dir:/srv/data", "dir:./data=data:ro", "file:/etc/hosts:ro", `dir:/a\=b=ab`,
		`dir:/x\:ro=x:ro`, "listen:[::1]:80=web", "sock:db", "chan:c", "cap:c0011",
		"dir::ro", `dir:\\:ro`, "dir:/x=:ro", "file:a:ro:ro",
		"dir:./data=/data:ro", "file:/tmp/in=in/in.txt", "dir:/=/",
		"sock:tcp:127.0.0.1:6379=db:dial", "sock:unix:/run/x.sock=db", `dir:/x\:dial=x`, "listen:unix:/s",
		`file:/x\:rights=fd_read`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		g, err := ParseGrant(text)
		if err != nil {
			var se *GrantSyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseGrant(%q): error %T is not a *GrantSyntaxError", text, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ParseGrant(%q): error is not one line: %q", text, err)
			}
			return
		}
		if g.Source == "" {
			t.Fatalf("ParseGrant(%q) accepted an empty source: %+v", text, g)
		}
		if err := checkGrantName(g); err != nil {
			t.Fatalf("ParseGrant(%q) accepted guest name %q, which %v", text, g.Name, err)
		}
		if g.ReadOnly && g.Kind != GrantDir && g.Kind != GrantFile {
			t.Fatalf("ParseGrant(%q) accepted :ro on a %s grant", text, g.Kind)
		}
		if g.Dial && g.Kind != GrantSock {
			t.Fatalf("ParseGrant(%q) accepted :dial on a %s grant", text, g.Kind)
		}
		canon := g.String()
		again, err := ParseGrant(canon)
		if err != nil {
			t.Fatalf("ParseGrant(%q) = %+v, but its text %q does not parse: %v", text, g, canon, err)
		}
		if again != g {
			t.Fatalf("ParseGrant(%q) = %+v, but its text %q parses to %+v", text, g, canon, again)
		}
		if again.String() != canon {
			t.Fatalf("canonical text %q is not stable: %q", canon, again.String())
		}
	})
}

// checkGrantName checks g's guest name by the rule for its kind (see
// Grant): a dir or file grant's name may be a path, and a dir grant's may
// be "/", the guest's root; any other name is a plain name.
func checkGrantName(g Grant) error {
	switch {
	case g.Kind == GrantCap && g.Name == "":
		return nil // the capability's own name
	case g.Kind == GrantDir && g.Name == "/":
		return nil
	case g.Kind == GrantDir || g.Kind == GrantFile:
		return checkGuestPath(g.Name)
	}
	return checkName(g.Name)
}
