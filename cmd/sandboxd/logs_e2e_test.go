package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

// stampedLine is one line of `logs -t`: its time and its text.
type stampedLine struct {
	at   time.Time
	text string
}

// parseStamped parses the lines of `logs -t` output, failing the test on
// a line that does not begin with a client.TimestampFormat time.
func parseStamped(t *testing.T, out string) []stampedLine {
	t.Helper()
	var lines []stampedLine
	for _, l := range strings.SplitAfter(out, "\n") {
		if l == "" {
			continue
		}
		ts, text, ok := strings.Cut(l, " ")
		at, err := time.Parse(client.TimestampFormat, ts)
		if !ok || err != nil || len(ts) != len(client.TimestampFormat)-len("Z07:00")+1 {
			t.Fatalf("logs -t line %q does not begin with a time in %s: %v", l, client.TimestampFormat, err)
		}
		lines = append(lines, stampedLine{at, text})
	}
	return lines
}

// launchAndWait launches wasm detached as name and waits for it to exit
// with code.
func (d *daemonProc) launchAndWait(t *testing.T, name, wasm string, code int) {
	t.Helper()
	if r := d.cli(t, "launch", "--detach", "--name", name, wasm); r.code != 0 {
		t.Fatalf("launch %s: %d %q", name, r.code, r.stderr)
	}
	if r := d.cli(t, "wait", name); r.code != code {
		t.Fatalf("wait %s: exit %d (%q), want %d", name, r.code, r.stderr, code)
	}
}

// logs --tail, --since, -t and --stdout/--stderr select what the daemon
// kept as docker logs does, with both streams kept apart.
func TestLogsTailSinceTimestampsAndStreams(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	d.launchAndWait(t, "lines", guest(t, "cmd/sandboxd/testdata/lines.wat"), 0)
	cases := []struct {
		args           []string
		stdout, stderr string
	}{
		{nil, "o1\no2\no3\n", "e1\ne2\n"},
		{[]string{"--stdout"}, "o1\no2\no3\n", ""},
		{[]string{"--stderr"}, "", "e1\ne2\n"},
		{[]string{"--tail", "2"}, "o3\n", "e2\n"},
		{[]string{"--tail", "2", "--stdout"}, "o2\no3\n", ""},
		{[]string{"--tail", "1", "--stderr"}, "", "e2\n"},
		{[]string{"--tail", "0"}, "", ""},
		{[]string{"--tail", "all"}, "o1\no2\no3\n", "e1\ne2\n"},
		{[]string{"--tail", "99"}, "o1\no2\no3\n", "e1\ne2\n"},
		{[]string{"--since", "1h"}, "o1\no2\no3\n", "e1\ne2\n"},
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "", ""},
		{[]string{"--tail", "0", "-f"}, "", ""}, // the guest has exited: nothing comes
	}
	for _, c := range cases {
		r := d.cli(t, "logs", append([]string{"lines"}, c.args...)...)
		if r.code != 0 || r.stdout != c.stdout || r.stderr != c.stderr {
			t.Errorf("logs %v: code %d, stdout %q, stderr %q; want 0, %q, %q", c.args, r.code, r.stdout, r.stderr, c.stdout, c.stderr)
		}
	}

	// -t stamps each line with when it was written, in order.
	r := d.cli(t, "logs", "lines", "-t", "--stdout")
	out := parseStamped(t, r.stdout)
	if len(out) != 3 || out[0].text != "o1\n" || out[2].text != "o3\n" {
		t.Fatalf("logs -t --stdout: %q", r.stdout)
	}
	r = d.cli(t, "logs", "lines", "--timestamps", "--stderr")
	errs := parseStamped(t, r.stderr)
	if len(errs) != 2 || errs[1].text != "e2\n" || errs[0].at.Before(out[0].at) || out[2].at.Before(errs[1].at) {
		t.Fatalf("logs --timestamps --stderr: %q after stdout %q", r.stderr, r.stdout)
	}
	// --since a line's own time gives that line and what followed.
	since := errs[1].at
	r = d.cli(t, "logs", "lines", "--since", since.Format(time.RFC3339Nano))
	var wantOut string
	for _, l := range out {
		if !l.at.Before(since) {
			wantOut += l.text
		}
	}
	if r.code != 0 || r.stdout != wantOut || r.stderr != "e2\n" {
		t.Fatalf("logs --since %s: stdout %q, stderr %q; want %q, %q", since.Format(time.RFC3339Nano), r.stdout, r.stderr, wantOut, "e2\n")
	}

	logsUsageErrors(t, d)
}

// logsUsageErrors checks that logs refuses bad --tail, --since and stream
// flags as usage errors that say what to write.
func logsUsageErrors(t *testing.T, d *daemonProc) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--tail", "-1"}, `give a number of lines (0 or more) or "all"`},
		{[]string{"--tail", "x"}, `give a number of lines`},
		{[]string{"--since", "5"}, "give a duration back from now (30s, 10m, 2h) or an RFC 3339 time"},
		{[]string{"--since", "yesterday"}, "RFC 3339 time"},
		{[]string{"--stdout", "--stderr"}, "leave both out"},
	} {
		r := d.cli(t, "logs", append([]string{"lines"}, c.args...)...)
		if r.code != exitUsage {
			t.Errorf("logs %v: code %d, want %d", c.args, r.code, exitUsage)
		}
		oneLine(t, r.stderr, c.says)
	}
}
