package main

import (
	"bufio"
	"io"
	"os"

	"github.com/sandboxd/sandboxd/abi/abidoc"
)

func init() {
	register(command{
		name:    "abi",
		usage:   "[--format text|markdown|c-header|json] [--json]",
		summary: "print the native ABI's 49 calls, generated from the table the runtime uses",
		run:     abiCmd,
	})
}

// abiFormats are the generated forms of the call table: the text listing,
// the table in docs/ABI.md, and abi/include/sandboxd.h.
var abiFormats = map[string]func(io.Writer) error{
	"text":     abidoc.WriteTable,
	"markdown": abidoc.WriteMarkdown,
	"c-header": abidoc.WriteCHeader,
	"json":     abidoc.WriteJSON,
}

func abiCmd(args []string) int {
	c := commands["abi"]
	fs := newFlags(c)
	format := fs.String("format", "text", "output `FORMAT`: text, markdown (the table in docs/ABI.md), c-header (abi/include/sandboxd.h) or json (one object per call, one per line)")
	asJSON := fs.Bool("json", false, "the same as --format json")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if *asJSON {
		if *format != "text" && *format != "json" {
			return usageError(c, "--json and --format %s ask for two formats: give one", *format)
		}
		*format = "json"
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q", fs.Arg(0))
	}
	write, ok := abiFormats[*format]
	if !ok {
		return usageError(c, "--format %q is not one of text, markdown, c-header, json", *format)
	}
	w := bufio.NewWriter(os.Stdout)
	err := write(w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fail("abi: writing the table: %v", err)
		return exitFailure
	}
	return exitOK
}
