package policies

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sandboxd/sandboxd/caps"
)

// The file grammar as decoded (decode.go holds the schemas): a block or
// attribute not in them is an error ("Unsupported block type",
// "Unsupported argument") at its position. A *Range field is the range of
// the attribute's value, zero when the attribute is absent; Body is the
// block's body, for the positions of list elements. The struct tags are
// gohcl's, which decoded these structs before decode.go did: the tests
// decode with both and hold them to the same result.
type fileBody struct {
	Resources []rawResource `hcl:"resource,block"`
	Grants    []rawGrant    `hcl:"grant,block"`
	Delegates []rawDelegate `hcl:"delegate,block"`
	Denies    []rawDeny     `hcl:"deny,block"`
}

type rawResource struct {
	Kind      string    `hcl:"kind,label"`
	Name      string    `hcl:"name,label"`
	Path      *string   `hcl:"path,optional"`
	ReadOnly  *bool     `hcl:"read_only,optional"`
	TCP       *string   `hcl:"tcp,optional"`
	Unix      *string   `hcl:"unix,optional"`
	DefRange  hcl.Range `hcl:",def_range"`
	PathRange hcl.Range `hcl:"path,attr_value_range"`
	TCPRange  hcl.Range `hcl:"tcp,attr_value_range"`
	UnixRange hcl.Range `hcl:"unix,attr_value_range"`
}

type rawSubject struct {
	UIDs      []int64   `hcl:"uids,optional"`
	GIDs      []int64   `hcl:"gids,optional"`
	Users     []string  `hcl:"users,optional"`
	UIDsRange hcl.Range `hcl:"uids,attr_value_range"`
	GIDsRange hcl.Range `hcl:"gids,attr_value_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	Body      hcl.Body  `hcl:",body"`
}

type rawModule struct {
	SHA256      []string          `hcl:"sha256,optional"`
	Labels      map[string]string `hcl:"labels,optional"`
	SHA256Range hcl.Range         `hcl:"sha256,attr_value_range"`
	LabelsRange hcl.Range         `hcl:"labels,attr_value_range"`
	DefRange    hcl.Range         `hcl:",def_range"`
	Body        hcl.Body          `hcl:",body"`
}

type rawGrant struct {
	Name           string      `hcl:"name,label"`
	Resources      []string    `hcl:"resources"`
	Rights         *[]string   `hcl:"rights,optional"`
	ReadOnly       *bool       `hcl:"read_only,optional"`
	TTL            *string     `hcl:"ttl,optional"`
	Subject        *rawSubject `hcl:"subject,block"`
	Module         *rawModule  `hcl:"module,block"`
	DefRange       hcl.Range   `hcl:",def_range"`
	ResourcesRange hcl.Range   `hcl:"resources,attr_value_range"`
	RightsRange    hcl.Range   `hcl:"rights,attr_value_range"`
	TTLRange       hcl.Range   `hcl:"ttl,attr_value_range"`
	Body           hcl.Body    `hcl:",body"`
}

type rawDelegate struct {
	Name           string     `hcl:"name,label"`
	Resources      []string   `hcl:"resources"`
	MaxDepth       int64      `hcl:"max_depth"`
	MaxCopies      *int64     `hcl:"max_copies,optional"`
	Rights         *[]string  `hcl:"rights,optional"`
	ReadOnly       *bool      `hcl:"read_only,optional"`
	TTL            *string    `hcl:"ttl,optional"`
	Module         *rawModule `hcl:"module,block"`
	To             *rawModule `hcl:"to,block"`
	DefRange       hcl.Range  `hcl:",def_range"`
	ResourcesRange hcl.Range  `hcl:"resources,attr_value_range"`
	RightsRange    hcl.Range  `hcl:"rights,attr_value_range"`
	TTLRange       hcl.Range  `hcl:"ttl,attr_value_range"`
	DepthRange     hcl.Range  `hcl:"max_depth,attr_value_range"`
	CopiesRange    hcl.Range  `hcl:"max_copies,attr_value_range"`
	Body           hcl.Body   `hcl:",body"`
}

type rawDeny struct {
	Name           string      `hcl:"name,label"`
	Resources      []string    `hcl:"resources"`
	On             *[]string   `hcl:"on,optional"`
	Subject        *rawSubject `hcl:"subject,block"`
	Module         *rawModule  `hcl:"module,block"`
	To             *rawModule  `hcl:"to,block"`
	DefRange       hcl.Range   `hcl:",def_range"`
	ResourcesRange hcl.Range   `hcl:"resources,attr_value_range"`
	OnRange        hcl.Range   `hcl:"on,attr_value_range"`
	Body           hcl.Body    `hcl:",body"`
}

// Load reads and merges policy files. Every problem in every file is
// returned at once, as Errors.
func Load(files ...string) (*Policy, error) {
	var el errList
	var bodies []*fileBody
	for _, f := range files {
		src, err := readFile(f)
		if err != nil {
			el.errs = append(el.errs, Error{Pos: Pos{File: f}, Msg: err.Error()})
			continue
		}
		if b := decodeFile(f, src, &el); b != nil {
			bodies = append(bodies, b)
		}
	}
	return build(bodies, &el)
}

// MaxFileSize bounds a policy file. A policy of 1,000 rules is some
// 100 KiB; what is larger than this is not a policy file, and would take
// the memory of many times its size to parse.
const MaxFileSize = 16 << 20

// readFile reads a policy file, which must be a regular file (one that is
// not, a FIFO say, is refused rather than waited on) of at most
// MaxFileSize bytes.
func readFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: a policy is read from regular files only", name)
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err == nil && len(src) > MaxFileSize {
		err = fmt.Errorf("%s: larger than %d MiB, which no policy is: is it the right file?", name, MaxFileSize>>20)
	}
	return src, err
}

// Parse reads one policy from src; name is the file name errors carry.
func Parse(name string, src []byte) (*Policy, error) {
	var el errList
	var bodies []*fileBody
	if b := decodeFile(name, src, &el); b != nil {
		bodies = append(bodies, b)
	}
	return build(bodies, &el)
}

func decodeFile(name string, src []byte, el *errList) *fileBody {
	if !checkTokens(src, name, el) {
		return nil
	}
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		el.addDiags(diags)
		return nil
	}
	if !checkNoLoops(f.Body, el) {
		return nil
	}
	var d decoder
	b := d.decodeBody(f.Body)
	if d.diags.HasErrors() {
		el.addDiags(d.diags)
		return nil
	}
	return b
}

// checkNoLoops reports each for expression ([for x in …: …]) and %{for}
// directive in body, and returns false if there is one. A policy's values
// are literals, and HCL evaluates a loop by repeating its body once for
// each element: a few nested make billions of bytes of a few hundred.
func checkNoLoops(body hcl.Body, el *errList) bool {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return true
	}
	n := len(el.errs)
	hclsyntax.VisitAll(sb, func(node hclsyntax.Node) hcl.Diagnostics {
		switch node.(type) {
		case *hclsyntax.ForExpr:
			el.add(node.Range(), "a for expression: a policy's values are literals (strings, numbers, true and false, lists and maps): write the values out")
		case *hclsyntax.TemplateJoinExpr: // what a %{for} directive is parsed as
			el.add(node.Range(), "a %%{for} directive: a policy's values are literals (strings, numbers, true and false, lists and maps): write the string out")
		}
		return nil
	})
	return len(el.errs) == n
}

// maxNesting bounds how deep brackets, braces, parentheses, string
// templates and template directives (%{if} … %{endif}, %{for} …
// %{endfor}) nest. HCL's parser recurses once per level, so a file of
// deeply nested ones would otherwise take the whole process down with a
// stack overflow; a policy needs a few levels.
const maxNesting = 64

// maxOperators bounds the operators of a file: a policy's values are
// literals, and HCL parses and evaluates a chain of operators (!!!x,
// 1+1+…, a ? b : c ? …) by recursion as deep as the chain.
const maxOperators = 1024

// checkTokens reads the tokens of src, which HCL's scanner does without
// recursing, and reports the first nested deeper than maxNesting, or
// operator past maxOperators, before anything parses the file. It returns
// false when it reported one.
func checkTokens(src []byte, name string, el *errList) bool {
	tokens, _ := hclsyntax.LexConfig(src, name, hcl.InitialPos)
	depth, ops := 0, 0
	for i, t := range tokens {
		switch d := nesting(tokens, i); {
		case d > 0:
			if depth++; depth > maxNesting {
				el.add(t.Range, "nested more than %d deep: brackets, braces, parentheses and templates go a few levels deep in a policy", maxNesting)
				return false
			}
		case d < 0:
			depth = max(depth-1, 0)
		}
		if operators[t.Type] {
			if ops++; ops > maxOperators {
				el.add(t.Range, "more than %d operators (%s): a policy's values are literals: strings, numbers, true and false, lists and maps", maxOperators, t.Bytes)
				return false
			}
		}
	}
	return true
}

// operators are the tokens that chain expressions: arithmetic, comparison,
// logic, the conditional's "?" and traversal's ".".
var operators = map[hclsyntax.TokenType]bool{
	hclsyntax.TokenPlus: true, hclsyntax.TokenMinus: true, hclsyntax.TokenStar: true, hclsyntax.TokenSlash: true,
	hclsyntax.TokenPercent: true, hclsyntax.TokenEqualOp: true, hclsyntax.TokenNotEqual: true,
	hclsyntax.TokenLessThan: true, hclsyntax.TokenLessThanEq: true, hclsyntax.TokenGreaterThan: true,
	hclsyntax.TokenGreaterThanEq: true, hclsyntax.TokenAnd: true, hclsyntax.TokenOr: true, hclsyntax.TokenBang: true,
	hclsyntax.TokenQuestion: true, hclsyntax.TokenDot: true, hclsyntax.TokenEllipsis: true,
}

// nesting says whether tokens[i] opens a level (1), closes one (-1) or
// neither (0). A template directive's keyword opens or closes the level
// of the if or for it begins or ends.
func nesting(tokens hclsyntax.Tokens, i int) int {
	switch tokens[i].Type {
	case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
		hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
		return 1
	case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
		hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
		return -1
	case hclsyntax.TokenIdent:
		if i == 0 || tokens[i-1].Type != hclsyntax.TokenTemplateControl {
			return 0
		}
		switch string(tokens[i].Bytes) {
		case "if", "for":
			return 1
		case "endif", "endfor":
			return -1
		}
	}
	return 0
}

// build turns decoded files into a Policy, or returns every problem.
func build(bodies []*fileBody, el *errList) (*Policy, error) {
	p := &Policy{resources: map[resourceKey]*Resource{}}
	for _, b := range bodies {
		for i := range b.Resources {
			p.addResource(compileResource(&b.Resources[i], el), el)
		}
		for i := range b.Grants {
			p.rules = append(p.rules, compileGrant(&b.Grants[i], el))
		}
		for i := range b.Delegates {
			p.rules = append(p.rules, compileDelegate(&b.Delegates[i], el))
		}
		for i := range b.Denies {
			p.rules = append(p.rules, compileDeny(&b.Denies[i], el))
		}
	}
	p.checkRules(el)
	p.denies = newIndex(p.rules, TypeDeny)
	p.coverNamed(el)
	if err := el.result(); err != nil {
		return nil, err
	}
	p.grants = newIndex(p.rules, TypeGrant)
	p.delegates = newIndex(p.rules, TypeDelegate)
	return p, nil
}

func (p *Policy) addResource(r *Resource, el *errList) {
	if r == nil {
		return
	}
	k := resourceKey{r.Kind, r.Name}
	if old := p.resources[k]; old != nil {
		el.errs = append(el.errs, Error{Pos: r.Pos, Msg: "resource " + r.Kind + ":" + r.Name + " is already declared at " + old.Pos.String()})
		return
	}
	p.resources[k] = r
	p.resList = append(p.resList, r)
}

func compileResource(raw *rawResource, el *errList) *Resource {
	r := &Resource{Kind: raw.Kind, Name: raw.Name, Pos: posOf(raw.DefRange)}
	if !kinds[raw.Kind] {
		el.add(raw.DefRange, "unknown resource kind %q (want dir, file, sock, listen or chan)", raw.Kind)
		return nil
	}
	if err := checkName(raw.Name); err != nil {
		el.add(raw.DefRange, "resource name %q %v", raw.Name, err)
	} else if strings.Contains(raw.Name, "*") {
		el.add(raw.DefRange, "resource name %q may not contain \"*\": rules select resources by KIND:GLOB, where * matches any name, so no rule could name this one alone: rename it", raw.Name)
	}
	switch raw.Kind {
	case "dir", "file":
		compileHostPath(raw, r, el)
	case "sock", "listen":
		compileAddress(raw, r, el)
	case "chan":
		if raw.Path != nil || raw.ReadOnly != nil || raw.TCP != nil || raw.Unix != nil {
			el.add(raw.DefRange, "a chan resource takes no attributes")
		}
	}
	// A resource with a bad value stays declared, so that rules naming it
	// are not reported as well: the policy fails to load either way.
	return r
}

func compileHostPath(raw *rawResource, r *Resource, el *errList) {
	if raw.TCP != nil || raw.Unix != nil {
		el.add(raw.DefRange, "a %s resource takes path and read_only, not tcp or unix", raw.Kind)
	}
	if raw.Path == nil {
		el.add(raw.DefRange, "a %s resource needs path", raw.Kind)
		return
	}
	r.Path = *raw.Path
	switch {
	case !path.IsAbs(r.Path):
		el.add(raw.PathRange, "path %q must be absolute (begin with /)", r.Path)
	case path.Clean(r.Path) != r.Path:
		el.add(raw.PathRange, "path %q is not clean (write %q)", r.Path, path.Clean(r.Path))
	}
	r.ReadOnly = raw.ReadOnly != nil && *raw.ReadOnly
}

func compileAddress(raw *rawResource, r *Resource, el *errList) {
	if raw.Path != nil || raw.ReadOnly != nil {
		el.add(raw.DefRange, "a %s resource takes tcp or unix, not path or read_only", raw.Kind)
	}
	switch {
	case (raw.TCP == nil) == (raw.Unix == nil):
		el.add(raw.DefRange, "a %s resource needs exactly one of tcp (HOST:PORT) or unix (a socket path)", raw.Kind)
	case raw.TCP != nil:
		r.TCP = *raw.TCP
		if msg := checkTCP(raw.Kind, r.TCP); msg != "" {
			el.add(raw.TCPRange, "%s", msg)
		}
	default:
		r.Unix = *raw.Unix
		if msg := checkUnix(r.Unix); msg != "" {
			el.add(raw.UnixRange, "%s", msg)
		}
	}
}

// checkTCP says what is wrong with a tcp address of a resource of kind,
// as the daemon takes one inline: a sock connects, so it needs a host and
// a port 1-65535; a listener may leave the host out (":8080", every
// interface) and ask for port 0 (any free one, which caps shows).
func checkTCP(kind, addr string) string {
	m := hostPort().FindStringSubmatch(addr)
	if m != nil && !validHost(m[1]) {
		m = nil
	}
	if kind == "sock" {
		if m == nil || m[1] == "" || m[2] == "0" || !validPort(m[2]) {
			return fmt.Sprintf("tcp %q is not HOST:PORT (a name or address, and a port 1-65535)", addr)
		}
		return ""
	}
	if m == nil || !validPort(m[2]) {
		return fmt.Sprintf("tcp %q is not [HOST]:PORT (a name or address, or none for every interface, and a port 0-65535)", addr)
	}
	return ""
}

// checkUnix says what is wrong with a unix socket address: an absolute
// clean path, or @NAME in Linux's abstract namespace, that fits in a socket
// address, as the daemon takes one inline.
func checkUnix(addr string) string {
	switch {
	case addr == "@":
		return fmt.Sprintf("unix %q names no abstract address: write @NAME", addr)
	case !path.IsAbs(addr) && !strings.HasPrefix(addr, "@"):
		return fmt.Sprintf("unix %q must be an absolute path, or @NAME for an abstract address", addr)
	case path.IsAbs(addr) && path.Clean(addr) != addr:
		return fmt.Sprintf("unix %q is not clean, as a path must be for deny rules and grants to name it alike: write %q", addr, path.Clean(addr))
	case len(addr) > caps.MaxUnixPath:
		return fmt.Sprintf("unix %q is %d bytes, longer than the %d a socket address holds: use a shorter path", addr, len(addr), caps.MaxUnixPath)
	}
	return ""
}

// hostPort is compiled on first use, not at package initialisation, which
// every run of the CLI pays for (internal/layout holds it). The host may
// be empty, which only a listener takes; an IPv6 address may name its
// zone (the interface of a link-local address, [fe80::1%eth0]).
var hostPort = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\[[0-9a-fA-F:.]+(?:%[^\]]+)?\]|[A-Za-z0-9.-]*):(0|[1-9][0-9]{0,4})$`)
})

// validHost reports whether a host hostPort matched is one a connection
// or a listener could use: none (a listener's every interface), an
// address in brackets, an IPv4 address, or a DNS name of labels of 1 to
// 63 letters, digits and "-" that neither begin nor end with "-" (and
// not all digits and dots, which is an IPv4 address or nothing), with a
// final "." or without. What is not, the resolver would refuse only at
// the first grant.
func validHost(host string) bool {
	switch {
	case host == "":
		return true
	case strings.HasPrefix(host, "["):
		_, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil
	case strings.Trim(host, "0123456789.") == "":
		a, err := netip.ParseAddr(host)
		return err == nil && a.Is4()
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// validPort reports whether the digits hostPort matched are a port
// number, at most 65535.
func validPort(digits string) bool {
	_, err := strconv.ParseUint(digits, 10, 16)
	return err == nil
}

// elems gives the position of each element of a list attribute, so that
// an error points at the element, not the whole list. A list written as
// anything but a literal [ … ] falls back to the attribute's position.
type elems struct {
	exprs []hclsyntax.Expression
	whole hcl.Range
}

func listElems(body hcl.Body, name string, whole hcl.Range) elems {
	if b, ok := body.(*hclsyntax.Body); ok {
		if a := b.Attributes[name]; a != nil {
			if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
				return elems{exprs: t.Exprs, whole: whole}
			}
		}
	}
	return elems{whole: whole}
}

func (e elems) at(i int) hcl.Range {
	if i < len(e.exprs) {
		return e.exprs[i].Range()
	}
	return e.whole
}

func compileSelectors(texts []string, at elems, el *errList) []Selector {
	if len(texts) == 0 {
		el.add(at.whole, "resources is empty: list at least one KIND:NAME, KIND:GLOB or dir|file:/PATH")
	}
	out := make([]Selector, 0, len(texts))
	for i, t := range texts {
		s, err := parseSelector(t)
		if err != nil {
			el.add(at.at(i), "resources: %q: %v", t, err)
			continue
		}
		s.Pos = posOf(at.at(i))
		out = append(out, s)
	}
	return out
}

// compileRights reads a rights ceiling: caps' right names, less every
// write right when readOnly is set. Absent means every right.
func compileRights(names *[]string, readOnly *bool, at elems, el *errList) caps.Rights {
	ceiling := caps.RightsAll
	if names != nil {
		ceiling = 0
		if len(*names) == 0 {
			el.add(at.whole, "rights is empty: a capability with no rights is of no use; list the rights, or leave rights out for every right")
		}
		for i, n := range *names {
			bit, ok := caps.ParseRight(n)
			if !ok {
				el.add(at.at(i), "rights: unknown right %q (`sandboxd abi` lists them)", n)
			}
			ceiling |= bit
		}
	}
	if readOnly != nil && *readOnly {
		if names != nil && len(*names) > 0 && ceiling != 0 && ceiling&^caps.RightsWriteMask == 0 {
			el.add(at.whole, "rights: read_only takes away every right listed (%v): list a right that reads, or leave read_only out", ceiling)
		}
		ceiling &^= caps.RightsWriteMask
	}
	return ceiling
}

func compileTTL(s *string, r hcl.Range, el *errList) time.Duration {
	if s == nil {
		return 0
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d <= 0 {
		el.add(r, "ttl %q is not a positive duration (like \"90s\", \"10m\", \"2h\")", *s)
		return 0
	}
	return d
}
