package abi

// Placeholders until the file family is implemented; delete this file
// when every name below has a real handler.

var (
	fileAdvise   handler = noSys
	fileAllocate handler = noSys
	fileCreate   handler = noSys
	fileLink     handler = noSys
	fileOpen     handler = noSys
	fileReaddir  handler = noSys
	fileReadlink handler = noSys
	fileRename   handler = noSys
	fileStatFget handler = noSys
	fileStatFput handler = noSys
	fileStatGet  handler = noSys
	fileStatPut  handler = noSys
	fileSymlink  handler = noSys
	fileUnlink   handler = noSys
)
