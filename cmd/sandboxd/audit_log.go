package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/audit"
)

func init() {
	registerAudit(command{
		name:    "audit log",
		usage:   "[flags]",
		summary: "print the audit log's records, optionally only a guest's or a capability's, and follow it",
		run:     auditLogCmd,
	})
}

// followPoll is how often audit log --follow looks for new records.
const followPoll = 200 * time.Millisecond

func auditLogCmd(args []string) int {
	c := auditVerbs["log"]
	fs := newFlags(c)
	lf := addLogFlags(fs)
	follow := fs.Bool("follow", false, "keep printing records as they are appended, until interrupted")
	guest := fs.String("guest", "", "only records about guest `ID`: its start and exit, what it holds, gives and is given, decisions about it")
	capID := fs.String("cap", "", "only records about capability `ID`: its creation, use of it as a parent, its revocation")
	asJSON := fs.Bool("json", false, "print each record as it is in the log (JSON Lines)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q", fs.Arg(0))
	}
	enc := json.NewEncoder(os.Stdout)
	print := func(r audit.Record, _ audit.Pos) error {
		if !about(r, *guest, *capID) {
			return nil
		}
		if *asJSON {
			return enc.Encode(r)
		}
		_, err := fmt.Println(printable(summary(r)))
		return err
	}
	var err error
	if *follow {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		err = audit.Follow(ctx, lf.path(), followPoll, print)
	} else {
		err = audit.Scan(lf.path(), print)
	}
	if err != nil {
		fail("audit log: %v", err)
		return exitFailure
	}
	return exitOK
}

// about reports whether r concerns guest (if not "") and capability
// capID (if not "").
func about(r audit.Record, guest, capID string) bool {
	return (guest == "" || aboutGuest(r, guest)) && (capID == "" || aboutCap(r, capID))
}

func aboutGuest(r audit.Record, id string) bool {
	switch {
	case r.Guest != nil:
		return r.Guest.ID == id || r.Guest.Parent == id // a child it spawned
	case r.Receipt != nil:
		return slices.Contains(r.Receipt.Holders, id)
	case r.Cap != nil:
		return r.Cap.Holder == id
	case r.Decision != nil:
		return r.Decision.Holder == id || r.Decision.To == id
	}
	return false
}

func aboutCap(r audit.Record, id string) bool {
	switch {
	case r.Receipt != nil:
		return slices.Contains(r.Receipt.Revoked, id)
	case r.Cap != nil:
		return r.Cap.ID == id || r.Cap.Parent == id
	case r.Decision != nil:
		return r.Decision.Cap == id
	}
	return false
}
