package engine

import (
	"context"
	"testing"
	"time"

	"github.com/isol8/isol8/api"
)

// An Input maps signal names to the agent's, refuses others, queues what
// comes before the program starts and drops what comes after it ended.
func TestInputQueueing(t *testing.T) {
	ctx := context.Background()
	in := NewInput()
	if err := in.Signal(ctx, "SIGHUP"); !api.IsInvalidArgument(err) {
		t.Fatalf("SIGHUP: %v", err)
	}
	in.Write(ctx, []byte("a"))
	in.Signal(ctx, "SIGINT")
	in.CloseStdin(ctx)
	want := []inputMsg{{data: []byte("a")}, {signal: "INT"}, {eof: true}}
	for _, w := range want {
		got := <-in.ch
		if string(got.data) != string(w.data) || got.signal != w.signal || got.eof != w.eof {
			t.Fatalf("got %+v, want %+v", got, w)
		}
	}
	in.finish()
	for i := 0; i < 100; i++ { // more than the queue holds: never blocks
		if err := in.Write(ctx, []byte("late")); err != nil {
			t.Fatal(err)
		}
	}
	big := NewInput()
	go func() {
		for range big.ch {
		}
	}()
	chunk := make([]byte, 1<<20)
	for i := 0; i < MaxStdinBytes>>20; i++ {
		if err := big.Write(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := big.Write(ctx, []byte("x")); !api.IsInvalidArgument(err) {
		t.Fatalf("past the stdin limit: %v", err)
	}
	full := NewInput()
	for i := 0; i < cap(full.ch); i++ {
		full.Write(ctx, []byte("x"))
	}
	c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := full.Write(c, []byte("x")); err == nil {
		t.Fatal("a full queue did not wait for the context")
	}
}
