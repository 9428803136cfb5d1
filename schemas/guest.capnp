# The guest-facing API: what a guest speaks to the daemon, and through it
# to other guests, over the Cap'n Proto connection it opens on its
# supervisor channel (docs/PEERS.md explains it with examples).
#
# The daemon is in the middle of every exchange: a guest never talks to
# another guest directly. Every capability that crosses from one guest to
# another, as a published service, in a call's parameters or in its
# results, is a capability the daemon derived for the recipient from the
# giver's (edge "delegate"), decided by the loaded policy, recorded in the
# derivation graph and revoked when the giver's is.
@0xbce81d18e406e2c6;

using Go = import "/go.capnp";
$Go.package("guest");
$Go.import("github.com/sandboxd/sandboxd/schemas/guest");

# The bootstrap object of a guest's connection: it acts for that guest
# only, and reaches nothing the guest does not hold.
interface GuestSupervisor {
  # The guest's handle table: every fd with the capability behind it.
  handles @0 () -> (handles :List(HandleInfo));

  # Offer service under name to every guest that holds the channel named
  # channel (a `chan:CHANNEL` grant, or a copy of one). Fails if the
  # caller holds no such channel, or if the name is taken on it. The
  # service is withdrawn when the caller's connection ends (it exits).
  publish @1 (channel :Text, name :Text, service :Capability) -> ();

  # The service published under name on channel, as a capability derived
  # for the caller. Waits until it is published. Fails if the caller
  # holds no such channel.
  obtain @2 (channel :Text, name :Text) -> (service :Capability);

  # Wrap the handle fd as a capability the guest can pass to a peer in a
  # call: a copy of fd's capability (edge "dup"), narrowed to base and
  # inheriting when narrow is set (rights never widen). Each peer it is
  # passed to gets its own copy, derived from this one.
  handOver @3 (fd :UInt32, narrow :Bool, base :UInt64, inheriting :UInt64) -> (handle :GuestHandle, info :HandleInfo);

  # Turn a GuestHandle received from a peer into a handle of this guest:
  # a new fd on a copy of its capability. Fails for a handle that is not
  # the caller's (held by another guest) or has been revoked.
  install @4 (handle :GuestHandle) -> (fd :UInt32, info :HandleInfo);
}

# A handle (a file, a directory, a socket, a listener, a channel end)
# wrapped as a Cap'n Proto capability. It is one capability of the
# derivation graph; the guest holding it turns it into an fd with
# GuestSupervisor.install.
interface GuestHandle {
  info @0 () -> (info :HandleInfo);
}

# What a guest may know of a capability: never the host object behind it
# (a path, an address).
struct HandleInfo {
  fd @0 :UInt32;            # the handle in the guest's table (handles, install)
  id @1 :Text;              # the public capability id
  kind @2 :Text;            # dir, file, sock, listen, chan, stdio, service, …
  name @3 :Text;
  base @4 :UInt64;          # CloudABI rights bits
  inheriting @5 :UInt64;
  edge @6 :Text;            # how it was made: grant, dup, delegate, …
  parent @7 :Text;
  origin @8 :Text;          # what authorised it: the grant, or how it crossed
  holder @9 :Text;
}
