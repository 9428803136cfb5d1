package policies

import (
	"strings"
	"testing"
)

// A policy declares every address an inline grant takes, since under a
// policy inline addresses are refused: a listen resource may leave the
// host out (every interface) and ask for port 0 (any free port), and
// either kind may name an abstract unix address (@NAME). What no grant
// could ever use is refused at load: a sock needs a host and a port to
// connect to, and a unix path must fit in a socket address.
func TestResourcesDeclareEveryAddressAnInlineGrantTakes(t *testing.T) {
	long := "/run/" + strings.Repeat("x", 103) // 108 bytes
	for _, c := range []struct {
		kind, attr, value, err string
	}{
		{"listen", "tcp", ":8080", ""},
		{"listen", "tcp", "127.0.0.1:0", ""},
		{"listen", "tcp", "[::]:0", ""},
		{"listen", "tcp", "0.0.0.0:8080", ""},
		{"listen", "unix", "@api", ""},
		{"sock", "unix", "@db", ""},
		{"sock", "tcp", "db.internal:5432", ""},
		{"sock", "tcp", ":5432", `tcp ":5432" is not HOST:PORT (a name or address, and a port 1-65535)`},
		{"sock", "tcp", "127.0.0.1:0", `tcp "127.0.0.1:0" is not HOST:PORT (a name or address, and a port 1-65535)`},
		{"listen", "tcp", "127.0.0.1:65536", `tcp "127.0.0.1:65536" is not [HOST]:PORT (a name or address, or none for every interface, and a port 0-65535)`},
		{"listen", "tcp", "8080", `tcp "8080" is not [HOST]:PORT (a name or address, or none for every interface, and a port 0-65535)`},
		{"sock", "unix", "@", `unix "@" names no abstract address: write @NAME`},
		{"sock", "unix", "db.sock", `unix "db.sock" must be an absolute path, or @NAME for an abstract address`},
		{"sock", "unix", "/run/./db.sock", `unix "/run/./db.sock" is not clean, as a path must be for deny rules and grants to name it alike: write "/run/db.sock"`},
		{"listen", "unix", "/run/api/", `unix "/run/api/" is not clean, as a path must be for deny rules and grants to name it alike: write "/run/api"`},
		{"listen", "unix", long, `unix "` + long + `" is 108 bytes, longer than the 107 a socket address holds: use a shorter path`},
		{"sock", "unix", "@" + long[1:], `unix "@` + long[1:] + `" is 108 bytes, longer than the 107 a socket address holds: use a shorter path`},
	} {
		src := "resource \"" + c.kind + "\" \"r\" {\n  " + c.attr + " = \"" + c.value + "\"\n}\n"
		_, err := Parse("p.hcl", []byte(src))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %s = %q: %v, want it to load", c.kind, c.attr, c.value, err)
		case c.err != "" && (err == nil || err.Error() != "p.hcl:2:"+col(c.attr)+": "+c.err):
			t.Errorf("%s %s = %q: %v, want p.hcl:2:%s: %s", c.kind, c.attr, c.value, err, col(c.attr), c.err)
		}
	}
}

// col is the column of an attribute's value in the resources above.
func col(attr string) string {
	if attr == "tcp" {
		return "9"
	}
	return "10"
}

// A tcp host that is neither an address nor a DNS name (empty labels,
// a label beginning or ending with "-", brackets around no address, a
// dotted quad out of range) is refused at load, as a port out of range
// is, rather than by the resolver at the first grant.
func TestAHostNoNameOrAddressIsRefusedAtLoad(t *testing.T) {
	for _, c := range []struct {
		kind, value string
		ok          bool
	}{
		{"sock", "db.internal:5432", true},
		{"sock", "db.internal.:5432", true},
		{"sock", "localhost:5432", true},
		{"sock", "10.0.0.1:5432", true},
		{"sock", "[::1]:5432", true},
		{"sock", "[::ffff:10.0.0.1]:5432", true},
		{"sock", "[fe80::1%eth0]:5432", true},
		{"listen", "[fe80::1%br-lan.2]:0", true},
		{"sock", "[fe80::1%]:5432", false},
		{"sock", "db-1.x-y.example:5432", true},
		{"listen", ":0", true},
		{"listen", "[::]:8080", true},
		{"sock", "..:5432", false},
		{"sock", ".:5432", false},
		{"sock", "db..internal:5432", false},
		{"sock", "-db:5432", false},
		{"sock", "db-.internal:5432", false},
		{"sock", "[.]:5432", false},
		{"sock", "[:]:5432", false},
		{"listen", "[::1::2]:0", false},
		{"sock", "256.1.1.1:5432", false},
		{"sock", "10.0.0.1.5:5432", false},
		{"sock", strings.Repeat("a", 64) + ".example:5432", false},
	} {
		src := "resource \"" + c.kind + "\" \"r\" {\n  tcp = \"" + c.value + "\"\n}\n"
		_, err := Parse("p.hcl", []byte(src))
		if c.ok != (err == nil) {
			t.Errorf("%s tcp = %q: %v, want it to load: %v", c.kind, c.value, err, c.ok)
		}
	}
}
