package client

import (
	"context"
	"errors"
	"io"

	"github.com/sandboxd/sandboxd/schemas"
)

// stdinChunk is the most one write to a guest's stdin carries.
const stdinChunk = 32 << 10

// pumpStdin copies src to the guest's stdin sink until src ends (then it
// closes the sink: the guest reads end of file) or the sink fails (the
// guest ended). It owns sink. go-capnp's flow control keeps a bounded
// number of writes in flight, so a guest that reads slowly slows src's
// reading, as a pipe would.
func pumpStdin(src io.Reader, sink schemas.StdinSink) {
	defer sink.Release()
	ctx := context.Background()
	buf := make([]byte, stdinChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := buf[:n]
			werr := sink.Write(ctx, func(p schemas.StdinSink_write_Params) error { return p.SetData(data) })
			if werr != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return // the sink's release closes the guest's stdin
		}
	}
	if sink.WaitStreaming() != nil {
		return
	}
	f, rel := sink.Close(ctx, nil)
	defer rel()
	_, _ = f.Struct()
}
