package caps

import (
	"io"
	"strings"
	"testing"
)

// A standard stream is a character device only when it is a terminal's
// (AsTerminal); any other is of unknown type, as a pipe or a file is.
func TestAStdioStreamIsACharacterDeviceOnlyAsATerminals(t *testing.T) {
	for _, c := range []struct {
		s    *Stdio
		want FileType
	}{
		{NewStdin(strings.NewReader("")), TypeUnknown},
		{NewStdout("stdout", io.Discard), TypeUnknown},
		{NewStdin(strings.NewReader("")).AsTerminal(), TypeCharDevice},
		{NewStdout("stderr", io.Discard).AsTerminal(), TypeCharDevice},
	} {
		st, err := c.s.Stat()
		if c.s.FileType() != c.want || err != nil || st.Type != c.want {
			t.Errorf("%s: FileType %v, Stat %+v %v, want %v", c.s.name, c.s.FileType(), st, err, c.want)
		}
	}
}
