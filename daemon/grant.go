package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/caps"
)

// GrantKind is what a grant gives a guest.
type GrantKind uint8

const (
	GrantDir    GrantKind = iota + 1 // a host directory, pre-opened
	GrantFile                        // one host file, opened
	GrantSock                        // a named socket from policy
	GrantListen                      // a listener, by policy name or address
	GrantChan                        // a channel shared by guests granted the same name
	GrantCap                         // an existing capability the caller holds
)

var grantKindNames = [...]string{
	GrantDir: "dir", GrantFile: "file", GrantSock: "sock",
	GrantListen: "listen", GrantChan: "chan", GrantCap: "cap",
}

func (k GrantKind) String() string {
	if int(k) < len(grantKindNames) && grantKindNames[k] != "" {
		return grantKindNames[k]
	}
	return fmt.Sprintf("grantkind(%d)", uint8(k))
}

func parseGrantKind(s string) (GrantKind, bool) {
	for k, n := range grantKindNames {
		if n != "" && n == s {
			return GrantKind(k), true
		}
	}
	return 0, false
}

// MaxGuestName is the longest handle name a grant may give, in bytes.
const MaxGuestName = 255

// Grant is one parsed `--grant KIND:SOURCE[=GUEST][:ro|:dial|:create|:rights=…]`.
//
// The grammar (docs/GRANTS.md) is:
//
//	KIND ":" SOURCE [ "=" GUEST ] [ ":ro" | ":dial" | ":create" | ":rights=" LIST ]
//
// A final ":ro", ":dial" or ":create" is always an option, and the first unescaped
// "=" separates SOURCE from GUEST. Inside SOURCE, `\=`, `\:` and `\\`
// stand for "=", ":" and "\"; any other backslash is an error. Other colons
// in SOURCE are literal, so host paths and addresses with colons need no
// escaping unless they end in ":ro" or ":dial". GUEST is never escaped: it may not be
// empty, contain "/", "=", ":", "\", NUL or control characters, be "." or
// "..", or exceed MaxGuestName bytes. A dir or file grant's GUEST may also
// be a path ("/data", "out/logs"; see checkGuestPath), and a dir grant may
// be named exactly "/", the guest's root.
type Grant struct {
	Kind GrantKind
	// Source is what is granted: the host path (dir, file), the policy
	// resource name (sock, chan, listen), an inline address (sock and
	// listen, when it contains a colon: see inlineTarget) or the
	// capability id (cap).
	Source string
	// Name is the name the guest knows the handle by (its argdata
	// "handles" key). When the text gives none it is derived from Source:
	// the last path element for dir and file, "" for cap (the
	// capability's own name, known only when it is looked up), Source
	// itself otherwise, and "sock" or "listen" for an inline address.
	Name string
	// ReadOnly drops every right that modifies anything (dir and file
	// only).
	ReadOnly bool
	// Dial grants a dialer instead of one connection (sock only): each
	// sock_accept on it opens a new connection to the target.
	Dial bool
	// Create makes the host file when it is missing (file only,
	// ":create"): mode 0600, owned by the principal the grant is for. A
	// file that exists is opened as without it. A file the grant created
	// is removed again if the launch (or grant) it was for fails.
	Create bool
	// Rights, when not zero, narrows a cap: grant to the capability's
	// rights within it, base and inheriting alike (":rights=R1,R2").
	// ReadOnly narrows a cap: grant by dropping caps.RightsWriteMask.
	Rights caps.Rights

	// exact is set for an inline host path that a policy or a deny list
	// decided on: the path has had its symbolic links resolved, and is
	// opened only if it still has none, so that what is opened is what
	// was decided on.
	exact bool
}

// GrantSyntaxError is a grant text that does not parse. It is a usage
// error: the text must be corrected.
type GrantSyntaxError struct {
	Text   string
	Reason string
}

func (e *GrantSyntaxError) Error() string {
	return fmt.Sprintf("invalid grant %q: %s", e.Text, e.Reason)
}

// ParseGrant parses one grant. It does not touch the host: whether the
// source exists is checked when a guest is launched with it. Every
// rejection is a *GrantSyntaxError whose reason says what to correct.
func ParseGrant(text string) (Grant, error) {
	g, err := parseGrant(text)
	if err != nil {
		if e := unknownOption(text); e != nil {
			err = e
		}
		return Grant{}, &GrantSyntaxError{Text: text, Reason: err.Error()}
	}
	return g, nil
}

// parseGrant parses text, or returns the reason it does not parse. The
// checks run in the order of the grammar, so that the reason given is the
// first thing wrong: the text as a whole, KIND, ":ro", SOURCE, GUEST.
func parseGrant(text string) (Grant, error) {
	kind, kindText, rest, err := cutKind(text)
	if err != nil {
		return Grant{}, err
	}
	g := Grant{Kind: kind}
	rest, opt := cutOption(rest)
	if err := secondOption(rest, opt); err != nil {
		return Grant{}, err
	}
	g.ReadOnly, g.Dial, g.Create = opt == "ro", opt == "dial", opt == "create"
	if rights, ok := strings.CutPrefix(opt, "rights="); ok {
		if kind != GrantCap {
			return Grant{}, errors.New(`:rights= applies only to cap: grants (write \: for a colon that is part of the source)`)
		}
		if g.Rights, err = parseRightsOption(rights); err != nil {
			return Grant{}, err
		}
	}
	src, name, hasName, err := splitSource(rest)
	if err != nil {
		return Grant{}, err
	}
	if src == "" {
		return Grant{}, fmt.Errorf("empty %s after %q", sourceWord(kind), kindText+":")
	}
	g.Source = src
	if g.ReadOnly && kind != GrantDir && kind != GrantFile && kind != GrantCap {
		return Grant{}, errors.New(":ro applies only to dir:, file: and cap: grants")
	}
	if g.Dial && kind != GrantSock {
		return Grant{}, errors.New(`:dial applies only to sock: grants (write \: for a colon that is part of the source)`)
	}
	if g.Create && kind != GrantFile {
		return Grant{}, errors.New(`:create applies only to file: grants, which make the file when it is missing (write \: for a colon that is part of the source)`)
	}
	if err := checkSource(kind, src); err != nil {
		return Grant{}, err
	}
	if g.Name, err = guestName(kind, src, name, hasName); err != nil {
		return Grant{}, err
	}
	return g, nil
}

// unknownOption explains a grant that failed to parse and ends in what
// looks like a mistyped option, ":rw" or ":RO": a final unescaped colon
// and a word of letters. It is nil when the text does not end so. For
// sock: and listen: grants, whose addresses may end in a named port, and
// after a GUEST (a colon there is a bad name), only a known option in
// the wrong case counts.
func unknownOption(text string) error {
	kind, _, rest, err := cutKind(text)
	i := strings.LastIndexByte(rest, ':')
	if err != nil || i < 0 || escapedAt(rest, i) {
		return nil
	}
	word := rest[i+1:]
	if word == "" || strings.ContainsFunc(word, func(r rune) bool { return !unicode.IsLetter(r) }) {
		return nil
	}
	for _, opt := range grantOptions {
		if word == opt {
			return nil // a known option, rejected for another reason
		}
		if strings.EqualFold(word, opt) {
			return fmt.Errorf("unknown option %q: options are lower case: write :%s", ":"+word, opt)
		}
	}
	if kind == GrantSock || kind == GrantListen || strings.Contains(rest, "=") {
		return nil // an address's port, or a colon in a given name
	}
	switch kind {
	case GrantDir:
		return fmt.Errorf("unknown option %q: :ro (read-only) is the only option of dir: grants, which are read-write without it; if %q is part of the host path, name the handle: add =NAME", ":"+word, ":"+word)
	case GrantFile:
		return fmt.Errorf("unknown option %q: file: grants take :ro (read-only) or :create (make the file if it is missing), and are read-write without them; if %q is part of the host path, name the handle: add =NAME", ":"+word, ":"+word)
	case GrantCap:
		return fmt.Errorf("unknown option %q: cap: grants take :ro (read-only) or :rights=R1,R2, and keep every right of the capability without them", ":"+word)
	}
	return fmt.Errorf("unknown option %q: chan: grants take no option", ":"+word)
}

// cutKind checks that text is UTF-8 without NUL bytes and cuts it at its
// first colon into a known KIND (kindText as written) and the rest.
func cutKind(text string) (kind GrantKind, kindText, rest string, err error) {
	if strings.IndexByte(text, 0) >= 0 {
		return 0, "", "", errors.New("it contains a NUL byte")
	}
	if !utf8.ValidString(text) {
		return 0, "", "", errors.New("it is not valid UTF-8")
	}
	kindText, rest, ok := strings.Cut(text, ":")
	if !ok {
		return 0, "", "", fmt.Errorf("no kind: write KIND:SOURCE, e.g. dir:./data=data:ro (kinds: %s)", kindList())
	}
	if kind, ok = parseGrantKind(kindText); !ok {
		return 0, "", "", fmt.Errorf("unknown kind %q: use one of %s", kindText, kindList())
	}
	return kind, kindText, rest, nil
}

// grantOptions are the options a grant may end with, without their colon.
var grantOptions = [...]string{"ro", "dial", "create"}

// cutOption removes a final ":ro", ":dial", ":create" or ":rights=LIST" whose colon
// is not escaped and returns the option without its colon: that is the
// option, whatever the kind (parseGrant rejects it where it does not
// apply). LIST is what follows "rights=" to the end, letters, digits,
// "_" and "," only.
func cutOption(rest string) (string, string) {
	for _, opt := range grantOptions {
		if strings.HasSuffix(rest, ":"+opt) && !escapedAt(rest, len(rest)-len(opt)-1) {
			return rest[:len(rest)-len(opt)-1], opt
		}
	}
	i := strings.LastIndex(rest, ":rights=")
	if i < 0 || escapedAt(rest, i) || strings.ContainsFunc(rest[i+len(":rights="):], func(r rune) bool {
		return r != '_' && r != ',' && (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

// secondOption is the error of a grant that ends in two options, opt
// and another before it (rest is the grant with opt cut off): a grant
// takes one. Without it the first option would be read as part of the
// SOURCE, and the error would be about a guest name.
func secondOption(rest, opt string) error {
	if opt == "" {
		return nil
	}
	_, first := cutOption(rest)
	if first == "" {
		return nil
	}
	word := func(o string) string {
		if strings.HasPrefix(o, "rights=") {
			return "rights="
		}
		return o
	}
	pair := map[string]bool{word(first): true, word(opt): true}
	switch {
	case pair["create"] && pair["ro"]:
		return errors.New(":create does not combine with :ro (an empty read-only file is of no use): give one")
	case pair["ro"] && pair["rights="]:
		return errors.New(":ro and :rights= do not combine: list the rights instead")
	}
	return fmt.Errorf("two options, :%s and :%s: a grant takes one (write \\: for a colon that is part of the source)", word(first), word(opt))
}

// parseRightsOption parses the LIST of ":rights=LIST": right names as
// `sandboxd abi` and `caps` print them, separated by commas.
func parseRightsOption(list string) (caps.Rights, error) {
	if list == "" {
		return 0, errors.New(":rights= lists no right: name at least one (`sandboxd abi` lists them), e.g. :rights=fd_read,fd_seek")
	}
	var r caps.Rights
	for _, n := range strings.Split(list, ",") {
		b, ok := caps.ParseRight(n)
		if !ok {
			return 0, fmt.Errorf(":rights=: unknown right %q (`sandboxd abi` lists them; separate them with commas)", n)
		}
		r |= b
	}
	return r, nil
}

// Keep returns the rights a cap: grant keeps of the capability it
// names: every right, or those its :ro or :rights= leaves.
func (g Grant) Keep() caps.Rights {
	keep := ^caps.Rights(0)
	if g.Rights != 0 {
		keep = g.Rights
	}
	if g.ReadOnly {
		keep &^= caps.RightsWriteMask
	}
	return keep
}

// endsInOption reports whether s is ":ro", ":dial" or ":create", which a SOURCE
// must escape to keep.
func endsInOption(s string) bool {
	for _, opt := range grantOptions {
		if s == ":"+opt {
			return true
		}
	}
	return false
}

// checkSource checks the unescaped, non-empty SOURCE of a grant of kind k.
// A dir or file source is a host path, checked only when it is set up.
func checkSource(k GrantKind, src string) error {
	switch k {
	case GrantSock:
		return checkSockSource(src)
	case GrantChan, GrantCap:
		if err := checkName(src); err != nil {
			return fmt.Errorf("%s %q %s", sourceWord(k), src, err)
		}
	case GrantListen:
		return checkListenSource(src)
	case GrantDir, GrantFile:
		if len(src) > maxHostPath {
			return fmt.Errorf("host path is %d bytes, longer than the %d bytes Linux opens: give a shorter path", len(src), maxHostPath)
		}
	}
	return nil
}

// maxHostPath is the longest host path Linux opens: PATH_MAX (4096)
// bytes with the terminating NUL. A longer one could never be opened,
// and resolving its links element by element (caps.RealPath) takes time
// that grows with the square of its length.
const maxHostPath = 4095

// guestName returns the guest name of a grant of kind k: the GUEST the
// text gives (hasName), checked by the rule for k, or else the one derived
// from src, which must be a plain name.
func guestName(k GrantKind, src, name string, hasName bool) (string, error) {
	if !hasName && k == GrantCap {
		return "", nil // the capability's own name, known when it is looked up
	}
	if !hasName {
		name = defaultName(k, src)
		if err := checkName(name); err != nil {
			return "", fmt.Errorf("cannot take a guest name from %q (it would be %q, which %s): add =NAME", src, name, err)
		}
		return name, nil
	}
	if err := checkGivenName(k, name); err != nil {
		return "", fmt.Errorf("guest name %q %s", name, err)
	}
	return name, nil
}

// checkGivenName checks a GUEST written in a grant of kind k. A dir or
// file grant's may be a path; a dir grant's may also be "/", the guest's
// root directory: a WASI guest resolves every absolute path beneath it
// (docs/WASI.md, preopens). Other kinds take a plain name.
func checkGivenName(k GrantKind, name string) error {
	switch k {
	case GrantDir:
		if name == "/" {
			return nil
		}
		return checkGuestPath(name)
	case GrantFile:
		return checkGuestPath(name)
	}
	return checkName(name)
}

func kindList() string {
	return "dir, file, sock, listen, chan, cap"
}

func sourceWord(k GrantKind) string {
	switch k {
	case GrantDir, GrantFile:
		return "host path"
	case GrantListen:
		return "listener name or address"
	case GrantCap:
		return "capability id"
	}
	return k.String() + " name"
}

// escapedAt reports whether the byte at i is preceded by an odd number of
// backslashes.
func escapedAt(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// splitSource unescapes SOURCE up to the first unescaped "=" and returns
// what follows it verbatim as the guest name.
func splitSource(s string) (src, name string, hasName bool, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return "", "", false, errors.New(`it ends in a lone "\": write \\ for a backslash`)
			}
			i++
			switch s[i] {
			case '=', ':', '\\':
				b.WriteByte(s[i])
			default:
				r, _ := utf8.DecodeRuneInString(s[i:])
				return "", "", false, fmt.Errorf(`unknown escape %q: only \=, \: and \\ are escapes`, `\`+string(r))
			}
		case '=':
			return b.String(), s[i+1:], true, nil
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", false, nil
}

// CheckName reports whether n may name a guest's handle: it is nil for a
// name a grant could give, and otherwise an error that completes the
// sentence "handle name N ..." ("is empty", "contains ':' ..."). Callers
// that name a handle without a grant (delegating a capability) check it
// here so that every handle name a guest sees follows the same rules.
func CheckName(n string) error { return checkName(n) }

// checkName validates a guest handle name or a policy resource name.
func checkName(n string) error {
	switch {
	case n == "":
		return errors.New("is empty")
	case n == "." || n == "..":
		return errors.New(`is "." or ".."`)
	case len(n) > MaxGuestName:
		return fmt.Errorf("is longer than %d bytes", MaxGuestName)
	case !utf8.ValidString(n):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range n {
		switch {
		case r == '/' || r == '=' || r == ':' || r == '\\':
			return fmt.Errorf("contains %q (names may not contain / = : or \\)", r)
		case r == 0 || unicode.IsControl(r):
			return errors.New("contains a control character")
		}
	}
	return nil
}

// checkGuestPath validates the guest name of a dir or file grant. Besides
// a plain name it may be a path, "/data" or "out/logs": it is the name
// WASI guests see the directory mounted at (a preopen), and a label in
// the native ABI's argdata. Each "/"-separated part must be a valid
// name, so no part is empty, "." or "..".
func checkGuestPath(n string) error {
	if len(n) > MaxGuestName {
		return fmt.Errorf("is longer than %d bytes", MaxGuestName)
	}
	rest := strings.TrimPrefix(n, "/")
	if rest == "" {
		return errors.New(`is empty (only a dir grant may be named "/")`)
	}
	for _, part := range strings.Split(rest, "/") {
		if err := checkName(part); err != nil {
			if part == "" {
				return errors.New(`has an empty path element ("//" or a trailing "/")`)
			}
			return fmt.Errorf("has a path element %q that %s", part, err)
		}
	}
	return nil
}

func defaultName(k GrantKind, src string) string {
	switch k {
	case GrantDir, GrantFile:
		return filepath.Base(filepath.Clean(src))
	case GrantSock, GrantListen:
		if _, ok := inlineTarget(k, src); ok {
			return k.String()
		}
	case GrantCap:
		return ""
	}
	return src
}

// String returns the grant's canonical text: ParseGrant(g.String())
// returns g. The guest name is written only when it differs from the one
// the source would give, and SOURCE is escaped where it must be.
func (g Grant) String() string {
	var b strings.Builder
	b.WriteString(g.Kind.String())
	b.WriteByte(':')
	for i := 0; i < len(g.Source); i++ {
		c := g.Source[i]
		switch {
		case c == '\\' || c == '=':
			b.WriteByte('\\')
		case c == ':' && (endsInOption(g.Source[i:]) || g.Source[i:] == ":rights"):
			// Only a trailing ":ro", ":dial" or ":create" in the source
			// would be read as an option, or a trailing ":rights" with
			// the "=" and guest name after it as ":rights=LIST";
			// escaping its colon keeps it part of the source.
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	if g.Name != defaultName(g.Kind, g.Source) || g.Name == "/" {
		b.WriteByte('=')
		b.WriteString(g.Name)
	}
	if g.ReadOnly {
		b.WriteString(":ro")
	}
	if g.Dial {
		b.WriteString(":dial")
	}
	if g.Create {
		b.WriteString(":create")
	}
	if g.Rights != 0 {
		b.WriteString(":rights=" + strings.ReplaceAll(g.Rights.String(), "|", ","))
	}
	return b.String()
}

// GrantError is a grant that parsed but could not be set up: the host path
// is missing or of the wrong type, the caller may not read it, or the kind
// needs something embedded mode does not have.
type GrantError struct {
	Grant Grant
	Err   error
}

func (e *GrantError) Error() string { return fmt.Sprintf("grant %q: %v", e.Grant.String(), e.Err) }

func (e *GrantError) Unwrap() error { return e.Err }

// ErrNotSupported marks grants of a kind that cannot be set up yet.
var ErrNotSupported = errors.New("not supported yet")

// grantResource is one grant set up on the host and ready to be minted.
type grantResource struct {
	grant     Grant
	res       caps.Resource
	base, inh caps.Rights
	// flags are the handle's fd flags from the start (caps.FlagNonblock
	// for listeners and dialers: see sockFlags).
	flags uint32
	// created is the file a :create grant made, or nil: the launch
	// removes it again if it fails (undoCreate).
	created *createdFile
}

// createdFile is a host file a file:…:create grant made.
type createdFile struct {
	path string
	f    *os.File    // the open file, until a guest holds it
	info fs.FileInfo // the file as made, to remove that file only
}

// chown gives the file to uid and gid, as the daemon does when it runs as
// root for another principal: the file is the principal's, as if it had
// made it.
func (c *createdFile) chown(uid, gid uint32) error {
	if err := c.f.Chown(int(uid), int(gid)); err != nil {
		return fmt.Errorf("created %s but cannot give it to uid %d: %v: check the file system allows chown", c.path, uid, err)
	}
	info, err := c.f.Stat() // chown changed its status-change time
	if err != nil {
		return fmt.Errorf("cannot stat %s after creating it: %v", c.path, err)
	}
	c.info = info
	return nil
}

// undoCreate removes the file a :create grant made, for a launch or grant
// that failed: the file is left as it was before, missing. A file another
// has put in its place since is left alone.
func (r grantResource) undoCreate() {
	if r.created == nil {
		return
	}
	if fi, err := os.Lstat(r.created.path); err == nil && sameCreation(fi, r.created.info) {
		_ = os.Remove(r.created.path)
	}
}

// sameCreation reports whether a and b are the same file, unchanged since:
// the same inode (which a file made since the first was removed may
// reuse) and the same status-change time.
func sameCreation(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return os.SameFile(a, b) && ok1 && ok2 && sa.Ctim == sb.Ctim
}

// setup opens what g names on the host: a path, or (through sockets, for
// a named sock or listen grant) a socket. ctx bounds the name lookups and
// connections a sock grant makes. It holds nothing open when it fails.
func (g Grant) setup(ctx context.Context, sockets func(kind GrantKind, name string) (SockTarget, error)) (grantResource, error) {
	fail := func(format string, args ...any) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	switch g.Kind {
	case GrantDir, GrantFile:
		return g.setupPath()
	case GrantSock:
		return g.setupSock(ctx, sockets)
	case GrantListen:
		return g.setupListen(ctx, sockets)
	case GrantChan:
		return fail("%w: chan: grants join guests of one daemon, which needs the daemon (sandboxd serve) and a policy file", ErrNotSupported)
	case GrantCap:
		return fail("%w: cap: grants delegate a capability held through the daemon, which needs the daemon (sandboxd serve)", ErrNotSupported)
	}
	return fail("unknown grant kind")
}

// setupPath opens a dir or file grant's host path.
func (g Grant) setupPath() (grantResource, error) {
	fail := func(format string, args ...any) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	abs, err := filepath.Abs(g.Source)
	if err != nil {
		return fail("cannot resolve %s: %v", g.Source, err)
	}
	if g.Kind == GrantFile && g.Create {
		r, made, err := g.createFile(abs)
		if made || err != nil {
			return r, err
		}
		// It exists: it is opened as without :create.
	}
	fi, err := g.statHost(abs)
	if err != nil {
		if target, ok := danglingLink(abs, err); ok {
			return fail("%s is a symbolic link to %s, which does not exist: create %s, or grant the path it should lead to (:create makes no file through a link)", abs, target, target)
		}
		if g.Kind == GrantFile && !g.Create && !g.ReadOnly && errors.Is(err, fs.ErrNotExist) {
			return fail("%s does not exist: create it, add :create to the grant to have it made (file:%s:create), or correct the path", abs, escapeSource(g.Source))
		}
		return fail("%s", g.hostError(abs, err))
	}
	if g.Kind == GrantDir {
		if !fi.IsDir() {
			return fail("%s is not a directory: grant it with file:%s", abs, escapeSource(g.Source))
		}
		d, err := caps.OpenDir(abs)
		if err != nil {
			return fail("%s", g.hostError(abs, err))
		}
		if st, err := d.Stat(); g.exact && (err != nil || !sameInode(st, fi)) {
			d.Close()
			return fail("%s", g.hostError(abs, syscall.ELOOP))
		}
		base, inh := caps.GrantRights(caps.KindDirectory, g.ReadOnly)
		return grantResource{grant: g, res: d, base: base, inh: inh}, nil
	}

	return g.openFile(abs, fi)
}

// danglingLink reports whether err, of looking up abs, is abs's being a
// symbolic link whose target does not exist, and the target as the link
// names it.
func danglingLink(abs string, err error) (string, bool) {
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	target, lerr := os.Readlink(abs)
	return target, lerr == nil
}

// openFile opens a file grant's host file at abs, which stat found as fi.
func (g Grant) openFile(abs string, fi fs.FileInfo) (grantResource, error) {
	fail := func(format string, args ...any) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	if fi.IsDir() {
		return fail("%s is a directory: grant it with dir:%s", abs, escapeSource(g.Source))
	}
	if !fi.Mode().IsRegular() {
		return fail("%s is not a regular file (%s): file: grants take regular files only", abs, fileTypeWord(fi.Mode()))
	}
	// O_NONBLOCK keeps a path swapped for a FIFO after the Stat from
	// blocking the launch in open(2); it does nothing to regular files.
	flag := os.O_RDWR
	if g.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := g.openHost(abs, flag|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if !g.ReadOnly && errors.Is(err, fs.ErrPermission) {
			return fail("cannot open %s for writing: permission denied: add :ro to grant it read-only, or make it writable", abs)
		}
		return fail("%s", g.hostError(abs, err))
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return fail("%s changed into something other than a regular file while it was being opened: try again", abs)
	}
	base, inh := caps.GrantRights(caps.KindFile, g.ReadOnly)
	return grantResource{grant: g, res: caps.NewFile(f, abs), base: base, inh: inh}, nil
}

// createFile makes the file of a :create grant at abs, 0600, failing if
// anything is already there (O_EXCL, which also never follows a symbolic
// link): made is false, with no error, when something is, and the caller
// opens it as a grant without :create would.
func (g Grant) createFile(abs string) (r grantResource, made bool, err error) {
	fail := func(format string, args ...any) (grantResource, bool, error) {
		return grantResource{}, false, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	flag := os.O_RDWR
	if g.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := g.openHost(abs, flag|os.O_CREATE|os.O_EXCL|syscall.O_NOCTTY, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return grantResource{}, false, nil
	case errors.Is(err, fs.ErrNotExist):
		return fail("cannot create %s: the directory %s does not exist: create it or correct the path", abs, filepath.Dir(abs))
	case errors.Is(err, fs.ErrPermission):
		return fail("cannot create %s: permission denied: make %s writable by uid %d, or create the file and grant it without :create", abs, filepath.Dir(abs), os.Getuid())
	case err != nil:
		return fail("%s", g.hostError(abs, err))
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		_ = os.Remove(abs)
		return fail("cannot stat %s after creating it: %v", abs, err)
	}
	base, inh := caps.GrantRights(caps.KindFile, g.ReadOnly)
	return grantResource{
		grant: g, res: caps.NewFile(f, abs), base: base, inh: inh,
		created: &createdFile{path: abs, f: f, info: info},
	}, true, nil
}

// hostError is hostError, but for an exact grant a symbolic link in the
// path means one appeared after its links were resolved.
func (g Grant) hostError(path string, err error) string {
	if g.exact && errors.Is(err, syscall.ELOOP) {
		return fmt.Sprintf("%s changed while it was being opened (a symbolic link took the place of part of it): try again", path)
	}
	return hostError(path, err)
}

// hostError turns a failed stat or open into "what failed: what to do".
func hostError(path string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s does not exist: create it or correct the path", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("cannot open %s: permission denied: make it readable by uid %d or grant something else", path, os.Getuid())
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Sprintf("%s: a parent of it is not a directory: correct the path", path)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Sprintf("%s: too many levels of symbolic links: correct the path", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("cannot open %s: %v", path, err)
}

func fileTypeWord(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}

// escapeSource writes a host path the way it must appear as a SOURCE.
func escapeSource(s string) string {
	g := Grant{Kind: GrantDir, Source: s, Name: defaultName(GrantDir, s)}
	return strings.TrimPrefix(g.String(), "dir:")
}
