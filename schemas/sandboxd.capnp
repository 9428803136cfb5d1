# The sandboxd control API: what a client speaks to the daemon over its unix
# socket (docs/API.md explains it with examples).
#
# Every object here is a capability. Holding a Supervisor lets a principal
# launch guests and reach the guests and capabilities it owns; holding a
# Guest lets it wait for, kill, read the output of and grant to that one
# guest; holding a Cap lets it use exactly that capability: describe it,
# derive a narrower one, pass it to a guest, revoke it. The principal of a
# connection is the unix user of the process at the other end of the socket
# (SO_PEERCRED); no request can name another one.
@0xecb43e7f257b7687;

using Go = import "/go.capnp";
$Go.package("schemas");
$Go.import("github.com/sandboxd/sandboxd/schemas");

# The daemon's bootstrap object: one per connection, acting for the
# connection's principal.
interface Supervisor {
  # Compile (or reuse, by SHA-256) the module, pre-open the grants, and
  # start the guest. Unless request.detach is set, the guest is killed
  # when the returned Guest is released or the connection drops.
  launch @0 (request :LaunchRequest) -> (guest :Guest, info :GuestInfo, stdin :StdinSink);

  # Every guest the daemon knows (running, or exited and not yet
  # forgotten), oldest first. Principals other than root see only their own.
  list @1 () -> (guests :List(GuestInfo));

  # A guest by id, if the caller launched it (or is root).
  guest @2 (id :Text) -> (guest :Guest);

  # Revoke a capability by public id, with everything derived from it.
  # Allowed if the capability descends from one the caller's principal
  # holds or granted (or the caller is root).
  revoke @3 (capId :Text, reason :Text) -> (receipt :Receipt);

  # Mint a root capability held by this connection from grant text in the
  # `--grant` grammar (dir:HOST[=NAME][:ro], file:…). The token is the
  # capability's secret: whoever presents it with the id to capByToken
  # may use the capability. The capability is closed when the returned
  # Cap is released or the connection drops; what was derived from it
  # (restricted or delegated copies) lives on until revoked.
  mint @4 (grant :Text) -> (cap :Cap, info :CapInfo, token :Text);

  # A capability by public id, if the caller's principal holds or granted
  # it (as for revoke).
  cap @5 (capId :Text) -> (cap :Cap, info :CapInfo);

  # A capability by public id and secret token (hex), whoever asks.
  capByToken @6 (capId :Text, token :Text) -> (cap :Cap, info :CapInfo);

  # Who the daemon believes the caller is.
  whoami @7 () -> (principal :Principal);

  # Compile a module into the daemon's cache (in memory, while it stays
  # among --idle-modules, and in the state directory), so that a later
  # launch of the same bytes starts at once. Nothing runs.
  compile @8 (name :Text, wasm :Data) -> (sha256 :Text, took :Int64);

  # Forget a guest that has ended: ps -a no longer lists it and its id
  # and name are free. A running guest is refused.
  forget @9 (id :Text) -> ();

  # A question about the delegation graph (docs/AUDIT.md): the graph
  # itself, who can reach a resource, how a capability's holder got it,
  # what revoking a capability would cut off. The answer is the JSON
  # document `sandboxd audit … --json` prints. Only root and the daemon's
  # own user may ask: the graph shows every principal's guests.
  audit @10 (query :AuditQuery) -> (json :Data);

  # One page of the guests list returns, in the same order, each described
  # by the few fields ps shows: the first limit (0: 1,024; at most 16,384)
  # of the guests that come after the cursor `after` ("" for the start).
  # With all false, ended guests are left out. next is the cursor of the
  # following page, "" after the last. A page costs the daemon what it
  # holds, whatever the number of guests, so a listing of 100,000 guests
  # neither builds one message of them all nor holds the daemon up.
  listPage @11 (after :Text, limit :UInt32, all :Bool) -> (guests :List(GuestSummary), next :Text);
}

struct LaunchRequest {
  # Display name of the module (usually its file name); not identity.
  name @0 :Text;
  # The WebAssembly module. The daemon compiles each distinct module
  # (by SHA-256) once and reuses the compiled code.
  wasm @1 :Data;
  # Program arguments after the name (args[0] is set to name) and
  # KEY=VALUE environment strings.
  args @2 :List(Text);
  env @3 :List(Text);
  # Grants in the `--grant` grammar, opened by the daemon.
  grants @4 :List(Text);
  # Existing capabilities to pass to the guest, each derived for it
  # (edge "delegate") under the given name.
  caps @5 :List(Delegation);
  # Limits; zero means the daemon's default.
  memoryLimit @6 :UInt64;  # bytes of linear memory
  timeout @7 :Int64;       # nanoseconds of wall time before the guest is killed
  maxFds @8 :UInt32;       # size of the handle table
  # Bytes the guest reads from stdin (then end of file).
  stdin @9 :Data;
  # Where stdout and stderr go as the guest writes them, in order; the
  # guest waits while the sink is behind (pipe semantics). Output is also
  # kept for Guest.logs whether or not a sink is given.
  output @10 :OutputSink;
  # Keep the guest running after the launching client goes away.
  detach @11 :Bool;
  # KEY=VALUE labels of the module, matched by policy and shown by ps.
  labels @12 :List(Text);
  # A name for the guest, unique among the daemon's listed guests, that
  # works wherever its id does ("" for none).
  guestName @13 :Text;
  # The guest's stdin is what is written to the StdinSink launch returns,
  # until it is closed (then end of file). stdin must then be empty.
  stdinStream @14 :Bool;
  # Bytes of call stack the guest may use, as the daemon counts each call
  # (docs/CLI.md, Call stack); zero means the daemon's default.
  maxStack @15 :UInt64;
  # What the guest, and every guest it spawns, may never be given, in the
  # selector grammar of a policy's deny rules (docs/GRANTS.md, --deny):
  # a grant or delegation of what a selector covers is refused, whatever
  # the policy allows.
  deny @16 :List(Text);
}

struct Delegation {
  cap @0 :Cap;
  name @1 :Text;
}

interface Guest {
  info @0 () -> (info :GuestInfo);
  # Returns when the guest has exited.
  wait @1 () -> (status :ExitStatus);
  # Ends the guest; returns once it has exited.
  kill @2 (reason :Text) -> (status :ExitStatus);
  # Writes the guest's kept output to sink, then, with follow, what it
  # writes next until it exits. Returns when done; dropped counts bytes
  # that had been discarded from the front of the kept output asked for.
  # tail: only the last N lines kept (-1: all); since: only output
  # written at or after this time (Unix nanoseconds; 0: all);
  # skipStdout, skipStderr: leave that stream out (tail counts the lines
  # of the streams sent only).
  logs @3 (sink :OutputSink, follow :Bool, tail :Int64 = -1, since :Int64,
           skipStdout :Bool, skipStderr :Bool) -> (dropped :UInt64);
  # The guest's handle table.
  caps @4 () -> (handles :List(Handle));
  # The capability behind one of the guest's handles.
  handle @5 (fd :UInt32) -> (cap :Cap, info :CapInfo);
  # Open a new resource (`--grant` grammar, or cap:ID for a capability
  # the caller may use) and send it to the running guest on its
  # supervisor channel, where the guest receives it as a new handle with
  # sock_recv. Returns the new capability (its holder is the guest; it
  # appears in the guest's table once received).
  grant @6 (grant :Text) -> (info :CapInfo);
}

interface Cap {
  info @0 () -> (info :CapInfo);
  # Derive a narrower copy (edge "restrict") held by this connection.
  # Asking for a right this capability lacks fails.
  restrict @1 (base :UInt64, inheriting :UInt64) -> (cap :Cap, info :CapInfo, token :Text);
  # Pass a copy (edge "delegate", the same rights) to a running guest
  # under name ("" keeps this capability's name), sent on the guest's
  # supervisor channel as for Guest.grant. Returns the copy.
  delegate @2 (guest :Guest, name :Text) -> (info :CapInfo);
  # Revoke this capability and everything derived from it, in every
  # holder. Afterwards every call through this object fails.
  revoke @3 (reason :Text) -> (receipt :Receipt);
}

# Feeds a guest launched with stdinStream: each write is what its stdin
# reads next. A write returns once the guest has read the bytes before it,
# so a writer is paced by the reader; close gives it end of file once it
# has read the rest. Releasing the sink closes it.
interface StdinSink {
  write @0 (data :Data) -> stream;
  close @1 () -> ();
}

interface OutputSink {
  # time is when the guest wrote data (Unix nanoseconds; the first byte's
  # when writes close together were joined; 0 if unknown).
  write @0 (stream :StdStream, data :Data, time :Int64) -> stream;
}

enum StdStream {
  stdout @0;
  stderr @1;
}

struct Principal {
  uid @0 :UInt32;
  gid @1 :UInt32;
  pid @2 :Int32;   # of the connecting process, for logs
  name @3 :Text;   # user name, or "" if unknown
}

struct GuestInfo {
  id @0 :Text;
  name @1 :Text;
  sha256 @2 :Text;
  principal @3 :Principal;
  running @4 :Bool;
  status @5 :ExitStatus;   # meaningful once running is false
  started @6 :Int64;       # unix nanoseconds
  ended @7 :Int64;         # unix nanoseconds, 0 while running, set whenever running is false
  args @8 :List(Text);
  detached @9 :Bool;
  handles @10 :UInt32;
  labels @11 :List(Text);  # KEY=VALUE, sorted
  guestName @12 :Text;     # "" when launched without one
  memoryLimit @13 :UInt64; # bytes of linear memory
  timeout @14 :Int64;      # nanoseconds; 0: none
  maxFds @15 :UInt32;      # the handle table's size
  grants @16 :List(Text);  # the launch's grant texts, in fd order from 3
  maxStack @17 :UInt64;    # bytes of call stack, as counted
  deny @18 :List(Text);    # the launch's deny selectors (LaunchRequest.deny)
}

# What ps shows of a guest (GuestInfo has everything).
struct GuestSummary {
  id @0 :Text;
  name @1 :Text;           # the module's display name
  guestName @2 :Text;      # "" when launched without one
  uid @3 :UInt32;          # of the principal that launched it
  user @4 :Text;           # its user name, or "" if unknown
  running @5 :Bool;
  status @6 :ExitStatus;   # meaningful once running is false
  started @7 :Int64;       # unix nanoseconds
  handles @8 :UInt32;
  labels @9 :List(Text);   # KEY=VALUE, sorted
}

struct ExitStatus {
  code @0 :UInt32;
  signal @1 :UInt8;
  trap @2 :Text;     # why the guest trapped, or ""
  killed @3 :Text;   # why the guest was killed ("timeout", a reason), or ""
}

struct Handle {
  fd @0 :UInt32;
  info @1 :CapInfo;
  # Sent on the guest's supervisor channel and not received yet: it has
  # no fd (fd is 0), and is revocable like any other.
  pending @2 :Bool;
}

struct CapInfo {
  id @0 :Text;
  kind @1 :Text;
  name @2 :Text;
  holder @3 :Text;
  base @4 :UInt64;
  inheriting @5 :UInt64;
  rights @6 :Text;            # base rights by name
  inheritingRights @7 :Text;  # inheriting rights by name
  parent @8 :Text;
  edge @9 :Text;
  removed @10 :Text;          # rights dropped on the edge from parent, by name
  origin @11 :Text;
  resource @12 :Text;
  created @13 :Int64;         # unix nanoseconds
  revoked @14 :Bool;
  closed @15 :Bool;
  expires @16 :Int64;         # unix nanoseconds when a lease revokes it; 0: no lease
  by @17 :Text;               # who made the grant of a root capability ("alice (uid 1000)"); "" for others
}

struct Receipt {
  root @0 :Text;
  reason @1 :Text;
  revoked @2 :List(Text);
  holders @3 :List(Text);
  at @4 :Int64;    # unix nanoseconds
  took @5 :Int64;  # nanoseconds
  # Holders of other users, not named in holders: a receipt names only
  # the holders its caller may see (root and the daemon's user: all).
  others @6 :UInt32;
}

struct AuditQuery {
  # "graph", "who-can", "trace" or "what-if".
  kind @0 :Text;
  # The resource of who-can ("sock:db", "dir:/srv/data", a host path);
  # the capability id of trace and what-if.
  arg @1 :Text;
  # Unix nanoseconds: answer on the graph rebuilt from the audit log as of
  # then. 0: on the live graph.
  at @2 :Int64;
}
