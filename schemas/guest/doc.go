// Package guest is the Go code generated from schemas/guest.capnp
// (scripts/gen-schemas.sh): the guest-facing API a guest speaks to the
// daemon on its supervisor channel, GuestSupervisor and GuestHandle
// (docs/PEERS.md).
package guest
