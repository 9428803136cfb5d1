package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// Version is the format version every record carries ("v"). A reader
// refuses records of a version it does not know.
const Version = 1

// Record types.
const (
	// TypeOpen starts each run of a writer: a daemon start, a
	// `sandboxd run`. Discarded says how many bytes of an incomplete last
	// line (a write cut short by a crash, never acknowledged) it dropped.
	TypeOpen = "open"
	// TypeGrant is a root capability minted from a grant (or for stdio,
	// or the supervisor channel); TypeCreate one a guest created itself.
	TypeGrant  = "grant"
	TypeCreate = "create"
	// TypeDerive is a capability derived from another within its holder
	// or for a new resource (open, dup, revocable, restrict, accept);
	// TypeDelegate and TypeSpawn pass one on to another holder.
	TypeDerive   = "derive"
	TypeDelegate = "delegate"
	TypeSpawn    = "spawn"
	// TypeAdopt is a capability in flight (on a channel, or being set up
	// for a launch) taken by its holder.
	TypeAdopt = "adopt"
	// TypeNarrow is a capability whose rights were narrowed in place.
	TypeNarrow = "narrow"
	// TypeClose is a holder letting go of a capability.
	TypeClose = "close"
	// TypeRevoke is a revocation with its receipt.
	TypeRevoke = "revoke"
	// TypeLeaseExpired follows the revocation a lease made.
	TypeLeaseExpired = "lease-expired"
	// TypeDecision is a policy decision, allowed or denied, with its rule.
	TypeDecision = "decision"
	// TypeGuestStart and TypeGuestExit bound a guest's life.
	TypeGuestStart = "guest-start"
	TypeGuestExit  = "guest-exit"
	// TypeGuestExec is a guest replacing its program (proc_exec): from
	// then on it is judged, and shown, as the module it names.
	TypeGuestExec = "guest-exec"
	// TypeGuestSpawn is a child guest a guest spawned (proc_spawn),
	// before the first record of a handle it is given: the module it
	// runs, judged by policies as it passes handles on.
	TypeGuestSpawn = "guest-spawn"
	// TypeShutdown is the writer shutting down with Running guests still
	// running: it kills them and closes every capability, and records
	// nothing more (no close or guest-exit record of them follows). The
	// next run of the writer starts with an open record.
	TypeShutdown = "shutdown"
	// TypePrune declares that the log's oldest files past its size bound
	// (Options.MaxTotalBytes) are about to be removed, and the checkpoint
	// that stands for them (see Checkpoint).
	TypePrune = "prune"
)

// Record is one line of the log. The writer sets V, Seq, Time and Prev;
// the other fields depend on Type.
type Record struct {
	V    int       `json:"v"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Prev is the lower-case hex SHA-256 of the previous record's line
	// (without its newline); "" for the first record of a log.
	Prev string `json:"prev"`

	Cap       *CapRecord      `json:"cap,omitempty"`
	Receipt   *ReceiptRecord  `json:"receipt,omitempty"`
	Decision  *DecisionRecord `json:"decision,omitempty"`
	Guest     *GuestRecord    `json:"guest,omitempty"`
	Discarded int64           `json:"discarded,omitempty"`
	Running   int             `json:"running,omitempty"` // of a shutdown
	Pruned    *PruneRecord    `json:"pruned,omitempty"`
}

// PruneRecord is what a prune removes: records FromSeq to ToSeq, in
// Files, and the SHA-256 of the checkpoint file written in their place.
type PruneRecord struct {
	FromSeq    uint64   `json:"from_seq"`
	ToSeq      uint64   `json:"to_seq"`
	Files      []string `json:"files"`
	Checkpoint string   `json:"checkpoint"`
}

// CapRecord is a capability's public description: caps.Info without the
// token's hash (a log reader has no use for it, and it would let whoever
// has a leaked token confirm against the log that it is live) and without
// the revoked and closed flags, which revoke and close records carry.
type CapRecord struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Name       string `json:"name,omitempty"`
	Holder     string `json:"holder,omitempty"` // "" while in flight
	Base       string `json:"base"`
	Inheriting string `json:"inheriting"`
	Parent     string `json:"parent,omitempty"`
	Edge       string `json:"edge"`
	Removed    string `json:"removed,omitempty"`
	Origin     string `json:"origin,omitempty"`
	// By and ByUID are the user who made a root's grant (a grant at
	// launch: the launcher; a live grant: whoever made it; a client's
	// own mint: that client), as a guest record names its principal and
	// uid; absent on other capabilities and in logs from before they
	// were recorded. ByUID is a pointer so that root's uid 0 is written.
	By       string    `json:"by,omitempty"`
	ByUID    *uint32   `json:"by_uid,omitempty"`
	Resource string    `json:"resource,omitempty"`
	Created  time.Time `json:"created"`
	// ChanEnd is, on a channel's end (kind chan), which channel and end
	// it is; InFlight, on a capability sent on a channel and not yet
	// received, the channel, the end that receives it, and the channel
	// capability it was sent through (Via). The supervisor records them;
	// absent in logs from before it did, and on an adopt record.
	ChanEnd  *ChanEnd `json:"chan_end,omitempty"`
	InFlight *ChanEnd `json:"in_flight,omitempty"`
}

// ChanEnd is one end of a channel: the channel (caps.Channel.End's pair,
// unique within one run of the writer) and the end, 0 or 1. What one end
// sends, the holders of the other receive.
type ChanEnd struct {
	Chan uint64 `json:"chan"`
	Side int    `json:"side"`
	Via  string `json:"via,omitempty"` // of InFlight: the capability it was sent through
}

// Other is the other end of e's channel: the one that receives what e
// sends.
func (e ChanEnd) Other() ChanEnd { return ChanEnd{Chan: e.Chan, Side: 1 - e.Side} }

// ReceiptRecord is what one revocation cut off (caps.Receipt).
type ReceiptRecord struct {
	Root    string   `json:"root"`
	Reason  string   `json:"reason,omitempty"`
	Revoked []string `json:"revoked"`
	Holders []string `json:"holders,omitempty"`
	TookNS  int64    `json:"took_ns"`
}

// InFlight is a DecisionRecord's To for a delegation whose recipient is
// not known when it is decided: a handle sent on a channel.
const InFlight = "(in flight)"

// DecisionRecord is one decision of the grant policy.
type DecisionRecord struct {
	Op       string            `json:"op"` // "grant" or "delegate"
	Allowed  bool              `json:"allowed"`
	Rule     string            `json:"rule"` // FILE:LINE and the rule, or "default deny"
	Reason   string            `json:"reason,omitempty"`
	Resource string            `json:"resource"` // KIND:NAME or KIND:PATH
	Rights   string            `json:"rights"`   // asked for
	Granted  string            `json:"granted,omitempty"`
	Subject  string            `json:"subject,omitempty"` // the principal
	Holder   string            `json:"holder,omitempty"`  // the giver of a delegation
	To       string            `json:"to,omitempty"`      // the recipient: a guest id, or a module name for a launch
	Module   string            `json:"module,omitempty"`  // the recipient module's sha256
	Labels   map[string]string `json:"labels,omitempty"`
	Cap      string            `json:"cap,omitempty"` // the capability passed on
	Depth    int               `json:"depth,omitempty"`
	Copies   int               `json:"copies,omitempty"`
	TTLNS    int64             `json:"ttl_ns,omitempty"`
}

// GuestRecord is a guest's start or exit.
type GuestRecord struct {
	ID        string            `json:"id"`
	Module    string            `json:"module,omitempty"` // its name
	SHA256    string            `json:"sha256,omitempty"`
	Principal string            `json:"principal,omitempty"`
	UID       uint32            `json:"uid"`
	Parent    string            `json:"parent,omitempty"` // the guest that spawned it
	Labels    map[string]string `json:"labels,omitempty"`
	Grants    []string          `json:"grants,omitempty"`
	Deny      []string          `json:"deny,omitempty"` // the launch's deny selectors
	// Exit only.
	Code       uint32 `json:"code,omitempty"`
	Killed     string `json:"killed,omitempty"`
	Trap       string `json:"trap,omitempty"`
	Signal     uint8  `json:"signal,omitempty"`
	DurationNS int64  `json:"duration_ns,omitempty"`
}

// FromInfo is the public record of a capability.
func FromInfo(in caps.Info) CapRecord {
	by, uid := parseBy(in.By)
	return CapRecord{
		ID: string(in.ID), Kind: in.Kind.String(), Name: in.Name, Holder: in.Holder,
		Base: in.Base.String(), Inheriting: in.Inheriting.String(), Parent: string(in.Parent),
		Edge: in.Edge.String(), Removed: removedText(in.Removed), Origin: in.Origin,
		By: by, ByUID: uid, Resource: in.Resource, Created: in.Created.UTC(),
	}
}

// ByText is what a grant's minter gives caps.Kernel.MintBy to name the
// user who made the grant, "UID:NAME": the kernel keeps it as text it
// does not read, and FromInfo makes it the record's By (NAME, or
// "uid:UID" without one, as a guest record's principal) and ByUID.
func ByText(uid uint32, name string) string {
	return strconv.FormatUint(uint64(uid), 10) + ":" + name
}

// DescribeBy is who ByText's raw form names, for people: "alice (uid
// 1000)", "uid:4242 (uid 4242)" for a user without a name, other text as
// it is, "" for none.
func DescribeBy(raw string) string {
	by, uid := parseBy(raw)
	return strings.TrimPrefix(ByLine(by, uid), " by ")
}

// parseBy reads ByText's form; other text is By as it is, with no uid.
func parseBy(s string) (by string, uid *uint32) {
	if s == "" {
		return "", nil
	}
	u, name, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(u, 10, 32)
	if !ok || err != nil {
		return s, nil
	}
	id := uint32(n)
	if name == "" {
		name = "uid:" + u
	}
	return name, &id
}

// ByLine is " by NAME (uid UID)" for a capability whose record names
// who made its grant, " by NAME" without a uid, and "" for one that does
// not: what the CLI's lines append after a grant's origin.
func ByLine(by string, uid *uint32) string {
	switch {
	case by == "" && uid == nil:
		return ""
	case uid == nil:
		return " by " + by
	}
	return fmt.Sprintf(" by %s (uid %d)", by, *uid)
}

func removedText(r caps.Rights) string {
	if r == 0 {
		return ""
	}
	return r.String()
}

// FromReceipt is the record of a revocation's receipt.
func FromReceipt(r caps.Receipt) *ReceiptRecord {
	out := &ReceiptRecord{Root: string(r.Root), Reason: r.Reason, Holders: r.Holders, TookNS: int64(r.Took)}
	out.Revoked = make([]string, len(r.Revoked))
	for i, id := range r.Revoked {
		out.Revoked[i] = string(id)
	}
	return out
}

// FromEvent is the record of a kernel event, or ok false for an event
// the log does not keep.
func FromEvent(e caps.Event) (r Record, ok bool) {
	cr := FromInfo(e.Cap)
	r.Cap = &cr
	switch e.Type {
	case caps.EventMint:
		r.Type = TypeGrant
		if e.Cap.Edge == caps.EdgeCreate {
			r.Type = TypeCreate
		}
	case caps.EventDerive:
		r.Type = deriveType(e.Cap.Edge)
	case caps.EventNarrow:
		r.Type = TypeNarrow
	case caps.EventClose:
		r.Type = TypeClose
	case caps.EventRevoke:
		r.Type = TypeRevoke
		if e.Receipt != nil {
			r.Receipt = FromReceipt(*e.Receipt)
		}
	case caps.EventAdopt:
		r.Type = TypeAdopt
	default:
		return Record{}, false
	}
	return r, true
}

func deriveType(e caps.Edge) string {
	switch e {
	case caps.EdgeDelegate:
		return TypeDelegate
	case caps.EdgeSpawn:
		return TypeSpawn
	}
	return TypeDerive
}

// ParseRights reads rights in the form caps.Rights.String writes: names
// joined by '|', "bitN" for an unnamed bit, "none" or "" for no rights.
func ParseRights(s string) (caps.Rights, error) {
	if s == "" || s == "none" {
		return 0, nil
	}
	var r caps.Rights
	for _, name := range strings.Split(s, "|") {
		if b, ok := caps.ParseRight(name); ok {
			r |= b
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, "bit"))
		if !strings.HasPrefix(name, "bit") || err != nil || n < 0 || n >= bits.UintSize {
			return 0, fmt.Errorf("unknown right %q", name)
		}
		r |= caps.Rights(1) << n
	}
	return r, nil
}

// errVersion is a record of a format this reader does not know.
var errVersion = errors.New("unknown format version")

// ParseRecord reads one line (without its newline) of a log.
func ParseRecord(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	if r.V != Version {
		return Record{}, fmt.Errorf("%w %d (this sandboxd reads version %d)", errVersion, r.V, Version)
	}
	if r.Type == "" || r.Seq == 0 {
		return Record{}, errors.New("not a record: no type or seq")
	}
	if err := r.checkPayload(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// checkPayload refuses a record without the part its type is about (a
// grant without its capability, a revocation without its receipt), which
// no writer makes: readers can rely on it being there.
func (r Record) checkPayload() error {
	missing := ""
	switch r.Type {
	case TypeGrant, TypeCreate, TypeDerive, TypeDelegate, TypeSpawn, TypeAdopt, TypeNarrow, TypeClose:
		if r.Cap == nil {
			missing = "cap"
		}
	case TypeRevoke, TypeLeaseExpired:
		if r.Cap == nil || r.Receipt == nil {
			missing = "cap and receipt"
		}
	case TypeDecision:
		if r.Decision == nil {
			missing = "decision"
		}
	case TypeGuestStart, TypeGuestExit, TypeGuestExec, TypeGuestSpawn:
		if r.Guest == nil {
			missing = "guest"
		}
	case TypePrune:
		if r.Pruned == nil {
			missing = "pruned"
		}
	}
	if missing != "" {
		return fmt.Errorf("a %s record without its %s: the log was not written by sandboxd, or was edited", r.Type, missing)
	}
	return nil
}
