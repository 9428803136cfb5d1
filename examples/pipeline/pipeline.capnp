# The interfaces of the example pipeline (README.md beside this file):
# a fetcher lends a parser one read-only subdirectory of its documents,
# and the parser stores what it makes of each one through the store.
@0xd4fefc625f2bcac1;

using Go = import "/go.capnp";
using Guest = import "/guest.capnp";
$Go.package("pipelineapi");
$Go.import("github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi");

# Keeps what it is given in the store's own writable directory.
interface Store {
  # Write value to the file key (a plain name, no directory).
  put @0 (key :Text, value :Data) -> ();
}

# Reads documents from a directory it is lent and stores a summary of each.
interface Parser {
  # Use dir, a read-only directory handle, for the parse calls that follow.
  open @0 (dir :Guest.GuestHandle) -> ();
  # Read the document name in that directory, count its words and store
  # "name: N words" in the store under name.
  parse @1 (name :Text) -> (words :UInt32);
}
