package abi

// Placeholders until the sock family is implemented; delete this file
// when every name below has a real handler.

var (
	sockAccept   handler = noSys
	sockRecv     handler = noSys
	sockSend     handler = noSys
	sockShutdown handler = noSys
)
