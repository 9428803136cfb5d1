// Package peer makes a Go guest (GOOS=wasip1) a Cap'n Proto peer of the
// other guests of its daemon: it opens the guest's connection to the
// daemon on its supervisor channel and gives the daemon's GuestSupervisor
// (schemas/guest.capnp) Go methods.
//
// Serve an interface to the guests that hold channel "jobs":
//
//	c, err := peer.Connect(ctx) // gives up, with ctx.Err() wrapped, when ctx ends first
//	defer c.Close()
//	err = c.Publish(ctx, "jobs", "store", capnp.Client(api.Store_ServerToClient(&store{})))
//	<-c.Done() // serve until the daemon hangs up
//
// Call one:
//
//	svc, err := c.Obtain(ctx, "jobs", "store") // waits until it is published
//	st := api.Store(svc)
//
// Lend a peer a handle, narrowed, in a call; the peer turns it into one of
// its own fds:
//
//	h, err := c.HandOver(ctx, fd, &peer.Rights{Base: sandboxd.RightsReadOnlyDir, Inheriting: sandboxd.RightsReadOnlyFile})
//	… pass h (a guest.GuestHandle) as a parameter …
//	fd, err := c.Install(ctx, h) // on the receiving side
//
// Every capability that crosses goes through the daemon, which derives the
// receiver's copy from the giver's: rights never widen, and revoking the
// giver's capability makes the receiver's calls fail with an exception and
// its installed handle answer ENOTCAPABLE (sandboxd.IsNotCapable).
// docs/PEERS.md has the whole model.
package peer
