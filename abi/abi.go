// Package abi runs guests on wazero and gives them sandboxd's two system
// interfaces, both on the same capability tables (package caps):
//
//   - the native ABI, the wasm import module "sandboxd" with exactly 49
//     calls modelled on CloudABI's 49 system calls (see Calls and
//     docs/ABI.md), and
//   - WASI preview1 ("wasi_snapshot_preview1"), for unmodified programs.
//
// Every call names a handle the guest holds; every pointer and length from
// a guest is bounds-checked (EFAULT), every handle looked up (EBADF), every
// right checked (ENOTCAPABLE). A trap or a bad argument ends at most the
// guest that caused it.
package abi

//go:generate go run ./internal/abigen ..

import "github.com/sandboxd/sandboxd/caps"

// ModuleName is the wasm import module of the native ABI.
const ModuleName = "sandboxd"

// Errno is the value every call returns; it is caps.Errno, one type for the
// whole project.
type Errno = caps.Errno
