package policies

import (
	"cmp"
	"errors"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Selector is one entry of a rule's `resources` list: KIND ":" NAME, where
// NAME is a resource name, a glob ('*' matches any run of characters) or
// "*" alone; or, for dir and file, KIND ":" PATH, a host-path prefix that
// inline grants (`--grant dir:/srv/x`) fall under.
type Selector struct {
	Kind string
	Name string // a name, glob or "*"; empty when Path is set
	Path string // an absolute, clean host-path prefix
	Pos  Pos
}

func (s Selector) String() string {
	if s.Path != "" {
		return s.Kind + ":" + s.Path
	}
	return s.Kind + ":" + s.Name
}

// Specificity ranks. Names and paths never compete: a request names a
// resource or gives a host path, not both.
const rankExact = 1 << 20

// rank is the selector's specificity: an exact name beats any glob, a glob
// beats another with fewer literal characters (characters, as a person
// counts them: "é*" has one, as "*a" has), and "*", or any glob of stars
// alone, is lowest (0). A path prefix ranks by its number of elements
// ("/" is 1).
func (s Selector) rank() int {
	if s.Path != "" {
		if s.Path == "/" {
			return 1
		}
		return 1 + strings.Count(s.Path, "/")
	}
	if !strings.Contains(s.Name, "*") {
		return rankExact
	}
	literal := utf8.RuneCountInString(s.Name) - strings.Count(s.Name, "*")
	return literal + btoi(literal > 0)
}

func (s Selector) isGlob() bool { return s.Path == "" && strings.Contains(s.Name, "*") }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func pathUnder(p, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// overlaps reports whether some request could match both selectors.
func (s Selector) overlaps(o Selector) bool {
	if s.Kind != o.Kind || (s.Path == "") != (o.Path == "") {
		return false
	}
	if s.Path != "" {
		return pathUnder(s.Path, o.Path) || pathUnder(o.Path, s.Path)
	}
	return globsIntersect(s.Name, o.Name)
}

// globMatch matches name against a pattern whose only wildcard is '*'.
func globMatch(pat, name string) bool {
	star, mark := -1, 0
	i, j := 0, 0
	for j < len(name) {
		switch {
		case i < len(pat) && pat[i] == '*':
			star, mark = i, j
			i++
		case i < len(pat) && pat[i] == name[j]:
			i++
			j++
		case star >= 0:
			i = star + 1
			mark++
			j = mark
		default:
			return false
		}
	}
	for i < len(pat) && pat[i] == '*' {
		i++
	}
	return i == len(pat)
}

// globsIntersect reports whether some string matches both patterns. A
// pattern without '*' is one string. Two patterns with a '*' each meet
// exactly when their literal heads agree (one is a prefix of the other)
// and so do their literal tails: a string made of the longer head, every
// middle part of both, and the longer tail matches both, each '*' taking
// what the other pattern put there.
func globsIntersect(p, q string) bool {
	switch {
	case !strings.Contains(p, "*"):
		return globMatch(q, p)
	case !strings.Contains(q, "*"):
		return globMatch(p, q)
	}
	ph, qh := p[:strings.Index(p, "*")], q[:strings.Index(q, "*")]
	pt, qt := p[strings.LastIndex(p, "*")+1:], q[strings.LastIndex(q, "*")+1:]
	return (strings.HasPrefix(ph, qh) || strings.HasPrefix(qh, ph)) &&
		(strings.HasSuffix(pt, qt) || strings.HasSuffix(qt, pt))
}

// globEnds is glob's literal head, before its first '*', and its literal
// tail, after its last, reversed: the names it matches begin with the
// one, and reversed, with the other.
func globEnds(glob string) (head, tailReversed string) {
	return glob[:strings.IndexByte(glob, '*')], reverse(glob[strings.LastIndexByte(glob, '*')+1:])
}

// reverse is s with its bytes in reverse order.
func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// keyRuns is strings sorted, each with its index in the list it was made
// of: the strings that begin with a prefix are one run of it.
type keyRuns struct {
	keys []string
	idx  []int
}

func newKeyRuns(keys []string) keyRuns {
	k := keyRuns{keys: append([]string(nil), keys...), idx: make([]int, len(keys))}
	for i := range k.idx {
		k.idx[i] = i
	}
	sort.Sort(k)
	return k
}

func (k keyRuns) Len() int           { return len(k.keys) }
func (k keyRuns) Less(i, j int) bool { return k.keys[i] < k.keys[j] }
func (k keyRuns) Swap(i, j int) {
	k.keys[i], k.keys[j] = k.keys[j], k.keys[i]
	k.idx[i], k.idx[j] = k.idx[j], k.idx[i]
}

// run is the indexes of the strings that begin with prefix.
func (k keyRuns) run(prefix string) []int {
	lo := sort.SearchStrings(k.keys, prefix)
	n := sort.Search(len(k.keys)-lo, func(i int) bool { return !strings.HasPrefix(k.keys[lo+i], prefix) })
	return k.idx[lo : lo+n]
}

// Resource kinds the language knows.
var kinds = map[string]bool{"dir": true, "file": true, "sock": true, "listen": true, "chan": true}

// IsKind reports whether kind is a resource kind the language knows: dir,
// file, sock, listen or chan.
func IsKind(kind string) bool { return kinds[kind] }

// parseSelector reads "KIND:NAME", "KIND:GLOB" or "KIND:/PATH".
func parseSelector(text string) (Selector, error) {
	kind, rest, ok := strings.Cut(text, ":")
	if !ok {
		return Selector{}, errors.New("want KIND:NAME, KIND:GLOB or dir|file:/PATH")
	}
	if !kinds[kind] {
		return Selector{}, errors.New("unknown resource kind " + quote(kind) + " (want dir, file, sock, listen or chan)")
	}
	if strings.HasPrefix(rest, "/") {
		if kind != "dir" && kind != "file" {
			return Selector{}, errors.New("a host-path prefix applies to dir and file only")
		}
		if path.Clean(rest) != rest {
			return Selector{}, errors.New("host path " + quote(rest) + " is not clean (write " + quote(path.Clean(rest)) + ")")
		}
		if i := strings.Index(rest+"/", "/*/"); i >= 0 {
			// An element "*" is a glob meant (a file of that name hardly
			// exists), which would leave a deny covering nothing of what
			// it was written for. A "*" inside a name (x*y) is the name's.
			return Selector{}, errors.New("host path " + quote(rest) + ` has a "*" element, which a host path does not expand: a host-path prefix covers everything beneath it (write ` + quote(kind+":"+cmp.Or(rest[:i], "/")) + ")")
		}
		return Selector{Kind: kind, Path: rest}, nil
	}
	if (kind == "dir" || kind == "file") && strings.Contains(rest, "/") {
		return Selector{}, errors.New("host path " + quote(rest) + " must be absolute (begin with /)")
	}
	if err := checkName(strings.ReplaceAll(rest, "*", "x")); err != nil {
		return Selector{}, errors.New("name " + quote(rest) + " " + err.Error())
	}
	return Selector{Kind: kind, Name: rest}, nil
}

// NameFits reports whether name can be a declared resource's name that
// a selector names exactly: it keeps the name rule (checkName) and has
// no '*', which a selector reads as a glob.
func NameFits(name string) bool {
	return checkName(name) == nil && !strings.Contains(name, "*")
}

// checkName is the grant grammar's rule for names (docs/GRANTS.md): 1–255
// bytes of UTF-8, not "." or "..", without "/", "=", ":", "\", NUL or
// control characters.
func checkName(n string) error {
	switch {
	case n == "":
		return errors.New("is empty")
	case len(n) > 255:
		return errors.New("is longer than 255 bytes")
	case n == "." || n == "..":
		return errors.New(`may not be "." or ".."`)
	case strings.ContainsAny(n, "/=:\\"):
		return errors.New(`may not contain "/", "=", ":" or "\"`)
	}
	if !utf8.ValidString(n) {
		return errors.New("is not valid UTF-8")
	}
	for _, c := range n {
		if c < 0x20 || c == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

func quote(s string) string { return strconv.Quote(s) }
