//go:build !wasip1

package main

import (
	"context"
	"errors"
	"net"
	"os"
)

// dialer connects to $REDIS_ADDR: the same client built natively, for
// comparing round trips with the guest (docs/BENCHMARKS.md).
func dialer() (func(ctx context.Context, network, address string) (net.Conn, error), error) {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		return nil, errors.New("set REDIS_ADDR=HOST:PORT (built natively, the client dials it itself)")
	}
	var d net.Dialer
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}, nil
}
