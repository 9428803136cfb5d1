package abi

// Placeholders until the cap family is implemented; delete this file
// when every name below has a real handler.

var (
	capRevoke    handler = noSys
	fdDescribe   handler = noSys
	capRevocable handler = noSys
)
