// Package daemon is the sandboxd supervisor: it launches guests with
// exactly the handles their grants name, bounds their lifetime and memory,
// and keeps the capability kernel that records every handle they hold, so
// that any of them can be listed and revoked while they run.
//
// The same Supervisor serves the daemon (behind the control API of
// package daemon/server, where the principal is the peer of the connection
// and the server decides what it may reach and grant) and embedded mode
// (`sandboxd run`, where the principal is the current user and the grants
// come from the command line). The Supervisor itself checks no principal:
// it opens what its caller grants with the process's authority.
//
//	s, err := daemon.New(ctx, daemon.Options{Logger: log})
//	m, err := s.Compile(ctx, "prog.wasm", wasm)
//	defer m.Release() // a launched guest holds its module on its own
//	g, err := daemon.ParseGrant("dir:./data=data:ro")
//	guest, err := s.Launch(ctx, daemon.LaunchSpec{Module: m, Grants: []daemon.Grant{g}, Stdout: os.Stdout})
//	st := guest.Wait()
//
// Every guest starts with stdin, stdout and stderr at fds 0, 1 and 2 (each
// readable or writable only) and then one handle per grant, in order, from
// fd 3, named by the grant's guest name. Nothing else is reachable from
// inside: there is no ambient file system, network or environment.
//
// The grant grammar is in grant.go and docs/GRANTS.md.
package daemon
