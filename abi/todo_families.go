package abi

// Placeholders for calls whose family files are not written yet.

var (
	fdCreate1    handler = noSys
	fdCreate2    handler = noSys
	fdDatasync   handler = noSys
	fdDup        handler = noSys
	fdPread      handler = noSys
	fdPwrite     handler = noSys
	fdReplace    handler = noSys
	fdSeek       handler = noSys
	fdStatGet    handler = noSys
	fdStatPut    handler = noSys
	fdSync       handler = noSys
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
	sockAccept   handler = noSys
	capRevoke    handler = noSys
	fdDescribe   handler = noSys
	capRevocable handler = noSys
	poll         handler = noSys
	procExec     handler = noSys
	procSpawn    handler = noSys
	procRaise    handler = noSys
	sockRecv     handler = noSys
	sockSend     handler = noSys
	sockShutdown handler = noSys
)
