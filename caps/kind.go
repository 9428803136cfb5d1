package caps

import "strconv"

// Kind is the type of object a capability designates.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindDirectory
	KindFile
	KindStdio
	KindByteObject
	KindChannel
	KindSocket
	KindListener
	KindModule
	KindProcess
	KindRevoker
	KindDialer
	// KindService is a Cap'n Proto object a guest serves to other guests
	// through the daemon (published, or passed in a call). Its one right,
	// RightFDWrite (as for sending on a channel), is the right to call it.
	KindService
)

var kindNames = [...]string{
	KindUnknown:    "unknown",
	KindDirectory:  "dir",
	KindFile:       "file",
	KindStdio:      "stdio",
	KindByteObject: "bytes",
	KindChannel:    "chan",
	KindSocket:     "sock",
	KindListener:   "listen",
	KindModule:     "module",
	KindProcess:    "process",
	KindRevoker:    "revoker",
	KindDialer:     "dial",
	KindService:    "service",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MaxRights is the most a capability of kind k may hold, as (base,
// inheriting). Minting or deriving clips requested rights to it.
func (k Kind) MaxRights() (base, inheriting Rights) {
	switch k {
	case KindDirectory:
		return RightsDirectoryBase, RightsDirectoryInheriting
	case KindFile:
		return RightsRegularFileBase, 0
	case KindStdio:
		return RightsTTYBase, 0
	case KindByteObject:
		return RightsByteObjectBase, 0
	case KindChannel:
		return RightsSocketBase, RightsSocketInheriting
	case KindSocket:
		// A host socket carries bytes only: no handle ever arrives on
		// one, so it has no rights to pass on to one.
		return RightsSocketBase, 0
	case KindListener, KindDialer:
		return RightsListenerBase, RightsSocketBase
	case KindModule:
		return RightsModuleBase, 0
	case KindProcess:
		return RightsProcessBase, 0
	case KindRevoker:
		return 0, 0
	case KindService:
		return RightFDWrite, 0
	}
	return 0, 0
}

// Edge names how a capability came to exist.
type Edge uint8

const (
	EdgeGrant     Edge = iota // minted by the supervisor from a grant or policy
	EdgeOpen                  // opened beneath a directory capability
	EdgeDup                   // duplicated within one holder
	EdgeDelegate              // sent to another holder over a channel or the API
	EdgeSpawn                 // handed to a child guest at spawn or exec
	EdgeRevocable             // a revocable forwarder made by cap_revocable
	EdgeRestrict              // a narrower copy made through the control API
	EdgeAccept                // a connection accepted from a listener
	EdgeCreate                // created by the guest (fd_create1, fd_create2)
)

var edgeNames = [...]string{
	EdgeGrant: "grant", EdgeOpen: "open", EdgeDup: "dup", EdgeDelegate: "delegate",
	EdgeSpawn: "spawn", EdgeRevocable: "revocable", EdgeRestrict: "restrict",
	EdgeAccept: "accept", EdgeCreate: "create",
}

// SplicedOnClose reports whether a closed capability made by edge e,
// below a parent, gives its children to that parent (Kernel.close): a
// copy made within its holder, or something opened beneath its parent.
// The audit graph's replay splices the same (audit.Graph.Apply).
func (e Edge) SplicedOnClose() bool { return e == EdgeDup || e == EdgeOpen }

// EdgeNamed returns the edge whose String is name.
func EdgeNamed(name string) (Edge, bool) {
	for e, s := range edgeNames {
		if s == name {
			return Edge(e), true
		}
	}
	return 0, false
}

func (e Edge) String() string {
	if int(e) < len(edgeNames) {
		return edgeNames[e]
	}
	return "edge(" + strconv.Itoa(int(e)) + ")"
}
