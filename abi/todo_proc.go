package abi

// Placeholders until the proc family is implemented; delete this file
// when every name below has a real handler.

var (
	procExec  handler = noSys
	procSpawn handler = noSys
	procRaise handler = noSys
)
