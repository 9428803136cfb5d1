// Package schemas holds sandboxd's Cap'n Proto schemas and the Go code
// generated from them: the control API between clients and the daemon
// (sandboxd.capnp; docs/API.md explains it). The generated files are
// committed; scripts/check-generated.sh proves they match the schemas.
package schemas

//go:generate ../scripts/gen-schemas.sh
