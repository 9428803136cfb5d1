//go:build wasip1

package main

import (
	"context"
	"net"

	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
)

// dialer is the guest's one way to the database: the dialer it was
// granted as "db".
func dialer() (func(ctx context.Context, network, address string) (net.Conn, error), error) {
	return sandboxd.DialFunc("db")
}
