package caps

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A new name of PATH_MAX bytes or more, trailing slashes counted, is
// ENAMETOOLONG for a hard link, followed or not, as link(2) has it and
// as it is for every other path: Link trimmed the slashes before it
// checked the length, and answered ENOENT, or EEXIST for a name that
// exists.
func TestALinksNewNameTooLongWithSlashesIsENAMETOOLONG(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	for _, name := range []string{"new", "sub/file"} {
		p2 := name + strings.Repeat("/", unix.PathMax-len(name))
		for how, link := range map[string]func(string, *Dir, string) error{"Link": d.Link, "LinkFollow": d.LinkFollow} {
			wantErrno(t, fmt.Sprintf("%s(file, %q and %d slashes)", how, name, len(p2)-len(name)), link("file", d, p2), ENAMETOOLONG)
		}
	}
}

// A rename's name of PATH_MAX bytes or more, trailing slashes counted,
// is ENAMETOOLONG as rename(2) has it, before a missing directory in the
// other name is found: Rename trimmed the slashes before it checked the
// length, and answered ENOENT for the other name's missing directory.
func TestARenamesNameTooLongWithSlashesIsENAMETOOLONG(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	long := func(name string) string { return name + strings.Repeat("/", unix.PathMax-len(name)) }
	for _, names := range [][2]string{
		{long("file"), "nodir/x"},
		{"file", long("nodir/x")},
		{"nofile", long("nodir/x")},
	} {
		wantErrno(t, fmt.Sprintf("Rename(%.10q…, %.10q…)", names[0], names[1]), d.Rename(names[0], d, names[1]), ENAMETOOLONG)
	}
}
