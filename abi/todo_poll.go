package abi

// Placeholders until the poll family is implemented; delete this file
// when every name below has a real handler.

var (
	poll handler = noSys
)
