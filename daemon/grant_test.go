package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

func TestParseGrantAcceptsTheDocumentedForms(t *testing.T) {
	cases := []struct {
		text string
		want Grant
	}{
		{"dir:/srv/data", Grant{Kind: GrantDir, Source: "/srv/data", Name: "data"}},
		{"dir:./data=files:ro", Grant{Kind: GrantDir, Source: "./data", Name: "files", ReadOnly: true}},
		{"dir:data/", Grant{Kind: GrantDir, Source: "data/", Name: "data"}},
		{"dir:/srv/reports=reports:ro", Grant{Kind: GrantDir, Source: "/srv/reports", Name: "reports", ReadOnly: true}},
		{"file:/etc/hosts:ro", Grant{Kind: GrantFile, Source: "/etc/hosts", Name: "hosts", ReadOnly: true}},
		{"file:/tmp/out.log=log", Grant{Kind: GrantFile, Source: "/tmp/out.log", Name: "log"}},
		// Colons inside SOURCE are literal; only a final ":ro" is the option.
		{"dir:/mnt/a:b=ab:ro", Grant{Kind: GrantDir, Source: "/mnt/a:b", Name: "ab", ReadOnly: true}},
		// Escapes: \= and \: and \\ inside SOURCE.
		{`dir:/mnt/c\=d=cd`, Grant{Kind: GrantDir, Source: "/mnt/c=d", Name: "cd"}},
		{`dir:/mnt/x\:ro=x`, Grant{Kind: GrantDir, Source: "/mnt/x:ro", Name: "x"}},
		{`dir:/mnt/x\:ro=x:ro`, Grant{Kind: GrantDir, Source: "/mnt/x:ro", Name: "x", ReadOnly: true}},
		{`file:C\\temp=t`, Grant{Kind: GrantFile, Source: `C\temp`, Name: "t"}},
		{"sock:db", Grant{Kind: GrantSock, Source: "db", Name: "db"}},
		{"sock:db=database", Grant{Kind: GrantSock, Source: "db", Name: "database"}},
		{"chan:pipeline", Grant{Kind: GrantChan, Source: "pipeline", Name: "pipeline"}},
		{"listen:web", Grant{Kind: GrantListen, Source: "web", Name: "web"}},
		{"listen:127.0.0.1:8080", Grant{Kind: GrantListen, Source: "127.0.0.1:8080", Name: "listen"}},
		{"listen:[::1]:8080=web", Grant{Kind: GrantListen, Source: "[::1]:8080", Name: "web"}},
		{"listen:127.0.0.1:0=web", Grant{Kind: GrantListen, Source: "127.0.0.1:0", Name: "web"}},
		{"listen:tcp:127.0.0.1:8080=web", Grant{Kind: GrantListen, Source: "tcp:127.0.0.1:8080", Name: "web"}},
		{"listen:unix:/run/web.sock=web", Grant{Kind: GrantListen, Source: "unix:/run/web.sock", Name: "web"}},
		// A sock grant's address is inline after tcp: or unix:, and a
		// final :dial makes it a dialer.
		{"sock:tcp:127.0.0.1:6379=db", Grant{Kind: GrantSock, Source: "tcp:127.0.0.1:6379", Name: "db"}},
		{"sock:tcp:127.0.0.1:6379", Grant{Kind: GrantSock, Source: "tcp:127.0.0.1:6379", Name: "sock"}},
		{"sock:tcp:db.example:6379=db", Grant{Kind: GrantSock, Source: "tcp:db.example:6379", Name: "db"}},
		{"sock:tcp:[::1]:6379=db", Grant{Kind: GrantSock, Source: "tcp:[::1]:6379", Name: "db"}},
		{"sock:unix:/run/redis.sock=db", Grant{Kind: GrantSock, Source: "unix:/run/redis.sock", Name: "db"}},
		{`sock:unix:/run/a\=b.sock=db`, Grant{Kind: GrantSock, Source: "unix:/run/a=b.sock", Name: "db"}},
		{"sock:db:dial", Grant{Kind: GrantSock, Source: "db", Name: "db", Dial: true}},
		{"sock:db=pool:dial", Grant{Kind: GrantSock, Source: "db", Name: "pool", Dial: true}},
		{"sock:tcp:127.0.0.1:6379=db:dial", Grant{Kind: GrantSock, Source: "tcp:127.0.0.1:6379", Name: "db", Dial: true}},
		// A path ending in ":dial" keeps it by escaping the colon.
		{`dir:/mnt/x\:dial=x`, Grant{Kind: GrantDir, Source: "/mnt/x:dial", Name: "x"}},
		// A cap: grant's default name is the capability's own (""
		// until it is looked up); :ro and :rights= narrow it.
		{"cap:c0123456789abcdef", Grant{Kind: GrantCap, Source: "c0123456789abcdef"}},
		{"cap:c01=log:ro", Grant{Kind: GrantCap, Source: "c01", Name: "log", ReadOnly: true}},
		{"cap:c01:rights=fd_read,fd_seek", Grant{Kind: GrantCap, Source: "c01", Rights: caps.RightFDRead | caps.RightFDSeek}},
		// :create makes a missing file; a path ending in ":create" keeps it by escaping.
		{"file:./out.log:create", Grant{Kind: GrantFile, Source: "./out.log", Name: "out.log", Create: true}},
		{"file:/tmp/out.log=log:create", Grant{Kind: GrantFile, Source: "/tmp/out.log", Name: "log", Create: true}},
		{`file:/mnt/x\:create=x`, Grant{Kind: GrantFile, Source: "/mnt/x:create", Name: "x"}},
		{"cap:c01=log:rights=fd_write", Grant{Kind: GrantCap, Source: "c01", Name: "log", Rights: caps.RightFDWrite}},
		{"dir:/srv/données=données", Grant{Kind: GrantDir, Source: "/srv/données", Name: "données"}},
		// "/" is the guest's root directory, for dir grants only.
		{"dir:/=/:ro", Grant{Kind: GrantDir, Source: "/", Name: "/", ReadOnly: true}},
		// Dir and file guest names may be paths: the mount point a WASI
		// guest sees, e.g. the issue's own `--grant dir:./data=/data:ro`.
		{"dir:./data=/data:ro", Grant{Kind: GrantDir, Source: "./data", Name: "/data", ReadOnly: true}},
		{"dir:./out=/out", Grant{Kind: GrantDir, Source: "./out", Name: "/out"}},
		{"dir:/srv/logs=var/log", Grant{Kind: GrantDir, Source: "/srv/logs", Name: "var/log"}},
		{"file:/tmp/in.txt=/in/in.txt:ro", Grant{Kind: GrantFile, Source: "/tmp/in.txt", Name: "/in/in.txt", ReadOnly: true}},
	}
	for _, c := range cases {
		got, err := ParseGrant(c.text)
		if err != nil {
			t.Errorf("ParseGrant(%q): %v", c.text, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseGrant(%q) = %+v, want %+v", c.text, got, c.want)
		}
		again, err := ParseGrant(got.String())
		if err != nil || again != got {
			t.Errorf("ParseGrant(%q).String() = %q does not parse back: %+v, %v", c.text, got.String(), again, err)
		}
	}
}

// A grant takes one option: two say so, rather than reading the first as
// part of the source and asking for a guest name.
func TestParseGrantRefusesTwoOptions(t *testing.T) {
	for text, reason := range map[string]string{
		"file:/x:create:ro":        ":create does not combine with :ro",
		"file:/x:ro:create":        ":create does not combine with :ro",
		"cap:c1:ro:rights=fd_read": ":ro and :rights= do not combine",
		"dir:/x:ro:ro":             "two options, :ro and :ro: a grant takes one",
		"sock:tcp:h:1:dial:dial":   "two options, :dial and :dial",
	} {
		_, err := ParseGrant(text)
		if err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseGrant(%q) = %v, want an error with %q", text, err, reason)
		}
	}
}

func TestParseGrantRejectsMalformedTextWithTheReason(t *testing.T) {
	cases := []struct{ text, reason string }{
		{"", "no kind"},
		{"data", "no kind"},
		{"disk:/x", `unknown kind "disk"`},
		{"Dir:/x", `unknown kind "Dir"`},
		{"dir:", "empty host path"},
		{"dir::ro", "empty host path"},
		{"dir:=x", "empty host path"},
		{"dir:/x=", `guest name "" is empty`},
		{"dir:/x=:ro", `guest name "" is empty`},
		{"dir:/x=a//b", "empty path element"},
		{"dir:/x=a/", "empty path element"},
		{"dir:/x=a/../b", `path element ".." that is "." or ".."`},
		{"dir:/x=/./b", `path element "." that`},
		{"dir:/x=//", "empty path element"},
		{"dir:/x=a:b", "may not contain"},
		{"dir:/x=a=b", "may not contain"},
		{`dir:/x=a\b`, "may not contain"},
		{"dir:/x=..", `is "." or ".."`},
		{"dir:/x=a\tb", "control character"},
		{"dir:/x=" + strings.Repeat("n", MaxGuestName+1), "longer than 255 bytes"},
		{"dir:/", "add =NAME"},
		{"file:/etc/hosts=/", `only a dir grant may be named "/"`},
		{"dir:/x=/a:b", "may not contain"},
		{"dir:/mnt/a:b", "add =NAME"},
		// A mistyped option says which there are.
		{"dir:./data:rw", `unknown option ":rw": :ro (read-only) is the only option of dir: grants`},
		{"file:./out.log:RO", `unknown option ":RO": options are lower case: write :ro`},
		{"dir:./data=data:RO", `write :ro`},
		{"sock:db:DIAL", `write :dial`},
		{"cap:c01:rw", `cap: grants take :ro (read-only) or :rights=R1,R2`},
		{"dir:.", "add =NAME"},
		{"dir:..", "add =NAME"},
		{`dir:/x\y`, `unknown escape "\\y"`},
		{`dir:/x\`, "lone"},
		{"dir:/x\x00y", "NUL"},
		{"dir:/x\xff", "UTF-8"},
		{"sock:db:ro", ":ro applies only to dir:, file: and cap: grants"},
		{"sock:db:rights=fd_read", ":rights= applies only to cap: grants"},
		{"cap:c01:rights=fd_read,fd_bogus", `unknown right "fd_bogus"`},
		{"cap:c01:rights=", ":rights= lists no right"},
		{"dir:/x:dial", ":dial applies only to sock: grants"},
		{"dir:/x:create", ":create applies only to file: grants"},
		{"file:./out.log:CREATE", "write :create"},
		{"file:./out.log:rw", "file: grants take :ro (read-only) or :create"},
		{"listen:web:dial", ":dial applies only to sock: grants"},
		{"sock:a:b", "neither a resource name nor an address"},
		{"sock:tcp:127.0.0.1", "not HOST:PORT"},
		{"sock:tcp::6379", "needs a host and a port other than 0"},
		{"sock:tcp:127.0.0.1:0", "needs a host and a port other than 0"},
		{"sock:tcp:127.0.0.1:redis", `port "redis" is not a number`},
		{"sock:tcp:127.0.0.1:65536", "is not a number from 0 to 65535"},
		{"sock:unix:", "empty unix socket path"},
		{"sock:unix:/" + strings.Repeat("p", 107), "longer than 107 bytes"},
		{"listen:unix:=web", "empty unix socket path"},
		{"listen:unix:/" + strings.Repeat("p", 107) + "=web", "longer than 107 bytes, the most a socket address holds: use a shorter path"},
		{"chan:a/b", `chan name "a/b"`},
		{"sock:", "empty sock name"},
		{"listen:a:b:c", "not HOST:PORT"},
		{"cap:", "empty capability id"},
	}
	for _, c := range cases {
		g, err := ParseGrant(c.text)
		if err == nil {
			t.Errorf("ParseGrant(%q) = %+v, want an error", c.text, g)
			continue
		}
		var se *GrantSyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseGrant(%q): error %T is not a *GrantSyntaxError", c.text, err)
		}
		if !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ParseGrant(%q) = %q, want it to say %q", c.text, err, c.reason)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ParseGrant(%q): error is not one line: %q", c.text, err)
		}
	}
}

func TestGrantStringIsCanonical(t *testing.T) {
	cases := map[string]string{
		"dir:/srv/data=data":       "dir:/srv/data",
		"dir:data/=data:ro":        "dir:data/:ro",
		"file:/etc/hosts=h:ro":     "file:/etc/hosts=h:ro",
		`dir:/mnt/c\=d=cd`:         `dir:/mnt/c\=d=cd`,
		`dir:/mnt/x\:ro=x`:         `dir:/mnt/x\:ro=x`,
		"listen:127.0.0.1:80=web":  "listen:127.0.0.1:80=web",
		"sock:db=db":               "sock:db",
		"sock:db=db:dial":          "sock:db:dial",
		"sock:tcp:10.0.0.1:5=sock": "sock:tcp:10.0.0.1:5",
		`dir:/mnt/x\:dial=x`:       `dir:/mnt/x\:dial=x`,
	}
	for in, want := range cases {
		g, err := ParseGrant(in)
		if err != nil {
			t.Fatalf("ParseGrant(%q): %v", in, err)
		}
		if got := g.String(); got != want {
			t.Errorf("ParseGrant(%q).String() = %q, want %q", in, got, want)
		}
	}
}

// A source ending in ":rights", followed by its guest name, is written
// with that colon escaped: unescaped, the text would end in what reads as
// a :rights= option, and the canonical text (which launch sends to the
// daemon) would not parse.
func TestGrantStringEscapesASourceEndingInRights(t *testing.T) {
	for _, text := range []string{`file:/srv/a\:rights=fd_read`, `dir:/srv/x\:rights=fd_read,fd_write:ro`, `dir:/srv/y\:rights=y`} {
		g, err := ParseGrant(text)
		if err != nil {
			t.Fatalf("ParseGrant(%q): %v", text, err)
		}
		again, err := ParseGrant(g.String())
		if err != nil || again != g {
			t.Errorf("ParseGrant(%q) = %+v; its text %q parses to %+v, %v", text, g, g.String(), again, err)
		}
	}
}

// setupErr sets up text's grant and returns its error, which must be a
// *GrantError for that grant and fit on one line.
func setupErr(t *testing.T, text string) error {
	t.Helper()
	g, err := ParseGrant(text)
	if err != nil {
		t.Fatalf("ParseGrant(%q): %v", text, err)
	}
	r, err := g.setup(context.Background(), nil)
	if err == nil {
		_ = r.res.Close()
		t.Fatalf("setup of %q succeeded, want an error", text)
	}
	var ge *GrantError
	if !errors.As(err, &ge) || ge.Grant != g {
		t.Fatalf("setup of %q: error %v (%T) does not name the grant", text, err, err)
	}
	if !strings.HasPrefix(err.Error(), "grant \""+g.String()+"\": ") || strings.ContainsAny(err.Error(), "\n\r") {
		t.Fatalf("setup of %q: error %q is not one line starting with the grant", text, err)
	}
	return err
}

func TestGrantSetupErrorsSayWhatFailedAndWhatToDo(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cases := []struct{ text, says string }{
		{"dir:" + missing, missing + " does not exist: create it or correct the path"},
		{"file:" + missing + ":ro", missing + " does not exist: create it or correct the path"},
		{"dir:" + file, file + " is not a directory: grant it with file:" + file},
		{"file:" + dir + "=d", dir + " is a directory: grant it with dir:" + dir},
		{"file:" + fifo, "is not a regular file (a FIFO)"},
		{"dir:" + file + "/sub=s", "a parent of it is not a directory"},
		{"listen:unix:" + missing + "/web.sock=web", "the directory " + missing + " does not exist: create it or correct the path"},
		{"listen:unix:" + file + "/web.sock=web", "a parent of it is not a directory: correct the path"},
		{"listen:unix:" + file + "=web", file + ": it exists and is not a socket: remove it or choose another path"},
	}
	for _, c := range cases {
		if err := setupErr(t, c.text); !strings.Contains(err.Error(), c.says) {
			t.Errorf("setup of %q = %q, want it to say %q", c.text, err, c.says)
		}
	}
}

func TestGrantKindsThatNeedTheDaemonSayNotSupportedYet(t *testing.T) {
	for _, text := range []string{"chan:pipe", "cap:c0123456789abcdef"} {
		err := setupErr(t, text)
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("setup of %q = %v, want ErrNotSupported", text, err)
		}
		if !strings.Contains(err.Error(), "not supported yet") || !strings.Contains(err.Error(), "daemon (sandboxd serve)") {
			t.Errorf("setup of %q = %q, want it to say it is not supported yet and needs the daemon", text, err)
		}
	}
}

func TestHostErrorSaysWhatToDo(t *testing.T) {
	cases := []struct {
		err  error
		says string
	}{
		{&fs.PathError{Op: "open", Path: "/p", Err: syscall.EACCES}, "cannot open /p: permission denied: make it readable by uid"},
		{&fs.PathError{Op: "open", Path: "/p", Err: syscall.ENOENT}, "/p does not exist: create it or correct the path"},
		{&fs.PathError{Op: "open", Path: "/p", Err: syscall.ELOOP}, "too many levels of symbolic links"},
		{&fs.PathError{Op: "open", Path: "/p", Err: syscall.EIO}, "cannot open /p: input/output error"},
	}
	for _, c := range cases {
		if got := hostError("/p", c.err); !strings.Contains(got, c.says) {
			t.Errorf("hostError(%v) = %q, want it to say %q", c.err, got, c.says)
		}
	}
}

func TestReadOnlyFileGrantOpensReadOnlyAndWritableGrantReadWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ro        bool
		writeable bool
	}{{true, false}, {false, true}} {
		g := Grant{Kind: GrantFile, Source: file, Name: "f", ReadOnly: c.ro}
		r, err := g.setup(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := r.res.(interface {
			Write([]byte) (int, error)
		}).Write([]byte("y"))
		if (werr == nil) != c.writeable {
			t.Errorf("ro=%v: host write error = %v, want writable=%v", c.ro, werr, c.writeable)
		}
		if r.base.Has(caps.RightFDWrite) != c.writeable {
			t.Errorf("ro=%v: rights %v, want fd_write=%v", c.ro, r.base, c.writeable)
		}
		_ = r.res.Close()
	}
}

func TestCreateGrantMakesAMissingFileAndOpensAnExistingOne(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	g, err := ParseGrant("file:" + path + ":create")
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || r.created == nil {
		t.Fatalf("after setup: %v, mode %v, created %v; want a 0600 file this grant created", err, fi.Mode(), r.created)
	}
	_ = r.res.Close()

	// Existing now, it is opened as it is: not recreated, not truncated,
	// and not removed when the launch fails.
	if err := os.WriteFile(path, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = g.setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.created != nil {
		t.Error("an existing file counts as created")
	}
	_ = r.res.Close()
	r.undoCreate()
	if b, err := os.ReadFile(path); err != nil || string(b) != "kept" {
		t.Errorf("the existing file is now %q, %v", b, err)
	}

	// A file the grant made is removed by undoCreate; one put in its
	// place since is not.
	other := filepath.Join(dir, "new.log")
	g2, _ := ParseGrant("file:" + other + ":create")
	r, err = g2.setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.res.Close()
	r.undoCreate()
	if _, err := os.Lstat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("undoCreate left the file it made: %v", err)
	}
	r, err = g2.setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.res.Close()
	// Made while the first exists, the other file cannot share its inode.
	theirs := filepath.Join(dir, "theirs")
	if err := os.WriteFile(theirs, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(theirs, other); err != nil {
		t.Fatal(err)
	}
	r.undoCreate()
	if b, err := os.ReadFile(other); err != nil || string(b) != "theirs" {
		t.Errorf("undoCreate removed a file it did not make: %q, %v", b, err)
	}

	err = setupErr(t, "file:"+filepath.Join(dir, "nodir", "x.log")+":create")
	if !strings.Contains(err.Error(), "does not exist: create it") {
		t.Errorf("missing directory: %v", err)
	}
}

// A host path longer than Linux opens (PATH_MAX) is refused as the grant
// is read, before the daemon resolves its links element by element: a
// path of a million bytes held the daemon for many minutes.
func TestGrantOfAHostPathLongerThanLinuxOpensIsRefused(t *testing.T) {
	s := newSupervisor(t)
	text := "dir:/tmp" + strings.Repeat("/a", 512<<10)
	done := make(chan error, 1)
	go func() {
		gr, err := ParseGrant(text)
		if err == nil {
			_, err = s.Mint(ClientHolder("client", Principal{}), Principal{}, gr, "test")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "longer than the 4095 bytes") {
			t.Fatalf("grant of a 1 MiB path: %.200v, want it refused as longer than the 4095 bytes…", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the grant of a 1 MiB path has not returned after 60s")
	}
}
