// Package audit is sandboxd's tamper-evident audit log and the delegation
// graph rebuilt from it.
//
// The log is JSON Lines (one Record per line, format Version), each record
// carrying the SHA-256 of the line before it, so that an edit, deletion or
// reordering breaks the chain at the record it touched (Verify). A Log
// appends records with group commit: Append returns once the record is on
// disk (fsynced), and concurrent appenders share one fsync. Files rotate
// by size and the chain continues across them.
//
// A Graph is the capability graph as the records describe it: replayed
// from a log (up to any time), or built from a live kernel's Snapshot,
// with the queries of `sandboxd audit`: who can reach a resource, how a
// capability's holder got it, and what a revocation would cut off.
//
// The package imports caps (for the kernel's events and rights) and
// policies (for the policy it suggests) only. Records hold public ids and
// descriptions only: never a capability's secret token, nor its hash.
package audit
