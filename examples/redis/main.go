// Command redis is a sandboxd guest (GOOS=wasip1) that talks to Redis with
// a real client library, go-redis, through the one thing it was granted:
// a dialer to the database (`--grant sock:db:dial`). The client's pool
// takes every connection from the dialer, so it keeps several and
// reconnects after the server restarts, and it can reach nothing but
// that one server.
//
//	GOOS=wasip1 GOARCH=wasm go build -o redis.wasm .
//	sandboxd run --grant sock:tcp:127.0.0.1:6379=db:dial redis.wasm
//
// It runs SET, GET, INCR from several goroutines at once (so the pool
// holds several connections), a pipeline and a pub/sub round trip,
// prints each result, then waits for a line on stdin and runs SET, GET
// and INCR again: a test restarts the server meanwhile, and the client
// must reconnect through the dialer.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	dial, err := dialer()
	if err != nil {
		fmt.Fprintf(os.Stderr, "redis: %v\n", err)
		os.Exit(2)
	}
	opts := &redis.Options{
		Addr:     "db", // for messages only: the dialer knows the one address
		Dialer:   dial,
		PoolSize: poolSize,
		// The server restarts under the client: retry a command on
		// another connection rather than fail it. go-redis cannot check
		// a pooled connection's health on wasip1 (its check needs the
		// raw socket), so each connection the restart killed costs one
		// retry before the pool dials afresh: allow more retries than
		// the pool holds connections.
		MaxRetries:      poolSize + 2,
		MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 500 * time.Millisecond,
	}
	if d, ok := timeout(); ok {
		// go-redis's own bounds (3 s to read, 4 s to wait for a pooled
		// connection, 5 s to dial) fit a server on an idle host; a test
		// on a busy one gives longer ones (REDIS_TIMEOUT=5m).
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = d, d, d, d
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	if len(os.Args) == 3 && os.Args[1] == "bench" {
		if err := bench(ctx, rdb, os.Args[2]); err != nil {
			fail(err)
		}
		return
	}
	if err := basics(ctx, rdb); err != nil {
		fail(err)
	}
	if err := pubsub(ctx, rdb); err != nil {
		fail(err)
	}
	fmt.Println("waiting")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail(fmt.Errorf("stdin: %w", err))
	}
	if err := rdb.Set(ctx, "sandboxd:after", "reconnected", 0).Err(); err != nil {
		fail(fmt.Errorf("SET after the restart: %w", err))
	}
	v, err := rdb.Get(ctx, "sandboxd:after").Result()
	if err != nil {
		fail(fmt.Errorf("GET after the restart: %w", err))
	}
	n, err := rdb.Incr(ctx, "sandboxd:hits").Result()
	if err != nil {
		fail(fmt.Errorf("INCR after the restart: %w", err))
	}
	fmt.Printf("after restart: GET sandboxd:after = %s, INCR sandboxd:hits = %d\n", v, n)
}

// timeout is the REDIS_TIMEOUT duration the guest was given, if any.
func timeout() (time.Duration, bool) {
	v, ok := os.LookupEnv("REDIS_TIMEOUT")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		fail(fmt.Errorf("REDIS_TIMEOUT=%q: want a duration above 0, e.g. 30s", v))
	}
	return d, true
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "redis: %v\n", err)
	os.Exit(1)
}

// poolSize is the most connections the client keeps.
const poolSize = 8

// workers and perWorker shape the concurrent INCRs: enough goroutines
// waiting on replies at once that the pool opens several connections.
const workers, perWorker = 16, 25

func basics(ctx context.Context, rdb *redis.Client) error {
	if err := rdb.Set(ctx, "sandboxd:key", "hello from wasm", 0).Err(); err != nil {
		return fmt.Errorf("SET: %w", err)
	}
	v, err := rdb.Get(ctx, "sandboxd:key").Result()
	if err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	fmt.Printf("GET sandboxd:key = %s\n", v)

	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				if err := rdb.Incr(ctx, "sandboxd:hits").Err(); err != nil {
					errs <- fmt.Errorf("INCR: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	hits, err := rdb.Get(ctx, "sandboxd:hits").Int()
	if err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	fmt.Printf("INCR sandboxd:hits x%d = %d, pool connections: %d\n", workers*perWorker, hits, rdb.PoolStats().TotalConns)

	var get *redis.StringCmd
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "sandboxd:piped", "1", 0)
		p.IncrBy(ctx, "sandboxd:piped", 41)
		get = p.Get(ctx, "sandboxd:piped")
		return nil
	})
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	fmt.Printf("pipeline: %d commands, GET sandboxd:piped = %s\n", len(cmds), get.Val())
	return nil
}

// pubsub subscribes on one connection and publishes on another: the
// message makes a round trip through the server.
func pubsub(ctx context.Context, rdb *redis.Client) error {
	sub := rdb.Subscribe(ctx, "sandboxd:news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription is confirmed
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	if err := rdb.Publish(ctx, "sandboxd:news", "hello subscribers").Err(); err != nil {
		return fmt.Errorf("PUBLISH: %w", err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	fmt.Printf("pubsub: %s on %s\n", msg.Payload, msg.Channel)
	return nil
}

// bench makes n GET round trips one after the other and prints how many
// it made per second (`redis bench N`, for docs/BENCHMARKS.md).
func bench(ctx context.Context, rdb *redis.Client, n string) error {
	count, err := strconv.Atoi(n)
	if err != nil {
		return fmt.Errorf("bench %q: not a count", n)
	}
	if err := rdb.Set(ctx, "sandboxd:bench", "x", 0).Err(); err != nil {
		return err
	}
	start := time.Now()
	for range count {
		if err := rdb.Get(ctx, "sandboxd:bench").Err(); err != nil {
			return err
		}
	}
	took := time.Since(start)
	fmt.Printf("%d round trips in %v: %.0f/s\n", count, took.Round(time.Millisecond), float64(count)/took.Seconds())
	return nil
}
