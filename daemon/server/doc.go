// Package server is the daemon's control server: it serves the Cap'n Proto
// API of schemas/sandboxd.capnp for a daemon.Supervisor on a unix socket,
// to clients such as package client and `sandboxd launch`.
//
// It uses only the Supervisor's exported API; what it adds is the control
// API's own: who each connection acts for (its principal, from
// SO_PEERCRED) and what that principal may do (Authority), the limits
// that bound what one client may cost (Limits, transport.go), the output a
// guest writes kept for `sandboxd logs` and streamed to attached clients
// (logs.go, guest.go), and the Guest and Cap objects it hands out
// (guest.go, cap.go).
//
//	sup, err := daemon.New(ctx, daemon.Options{Logger: log})
//	l, err := server.Listen("/run/sandboxd/sandboxd.sock")
//	srv := server.New(sup, server.Options{Logger: log})
//	go srv.Serve(l)
//	...
//	srv.Close(ctx) // first the server, then the supervisor
//	sup.Close(ctx)
package server
