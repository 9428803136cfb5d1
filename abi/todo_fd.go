package abi

// Placeholders until the fd family is implemented; delete this file
// when every name below has a real handler.

var (
	fdCreate1  handler = noSys
	fdCreate2  handler = noSys
	fdDatasync handler = noSys
	fdDup      handler = noSys
	fdPread    handler = noSys
	fdPwrite   handler = noSys
	fdReplace  handler = noSys
	fdSeek     handler = noSys
	fdStatGet  handler = noSys
	fdStatPut  handler = noSys
	fdSync     handler = noSys
)
