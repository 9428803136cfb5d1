package abi

import (
	"strings"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
)

// StartupArgdata builds the argdata a guest receives from argdata_get:
//
//	{"args": ["prog", "arg1", …], "env": {"K": "V", …}, "handles": {"name": fd, …}}
//
// "handles" names every handle in the table that has a name (stdin,
// stdout, stderr, and each grant's guest name).
func StartupArgdata(args, env []string, t *caps.Table) []byte {
	as := make([]argdata.Value, len(args))
	for i, a := range args {
		as[i] = argdata.String(a)
	}
	em := map[string]argdata.Value{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		em[k] = argdata.String(v)
	}
	hm := map[string]argdata.Value{}
	for _, e := range t.Entries() {
		if n := e.Cap.Name(); n != "" {
			if _, dup := hm[n]; !dup {
				hm[n] = argdata.Fd(e.FD)
			}
		}
	}
	return argdata.StringMap(map[string]argdata.Value{
		"args":    argdata.Seq(as...),
		"env":     argdata.StringMap(em),
		"handles": argdata.StringMap(hm),
	}).Encode()
}
