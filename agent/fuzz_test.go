package agent

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes (what a misbehaving process could write
// to the agent's stdout) to the frame reader: it must never panic, never
// return a payload over MaxPayload, and stop with an error at the end.
func FuzzReader(f *testing.F) {
	var good bytes.Buffer
	w := NewWriter(&good)
	_ = w.Write(TypeStdout, 7, []byte("hello"))
	_ = w.WriteJSON(TypeExit, 7, Exit{ExitCode: 3})
	f.Add(good.Bytes())
	f.Add(append([]byte("garbage\x00\xff"), good.Bytes()...))
	f.Add([]byte{byte(Magic >> 8), byte(Magic & 0xff), ProtocolVersion, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{byte(Magic >> 8), byte(Magic >> 8), byte(Magic & 0xff)})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		consumed := 0
		for i := 0; ; i++ {
			fr, err := r.Read()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
			if len(fr.Payload) > MaxPayload {
				t.Fatalf("payload of %d bytes exceeds MaxPayload", len(fr.Payload))
			}
			consumed += HeaderSize + len(fr.Payload)
			if consumed+int(r.Skipped) > len(data) {
				t.Fatalf("reader returned more than it was given")
			}
			if i > len(data) {
				t.Fatal("more frames than input bytes")
			}
		}
	})
}

// FuzzRoundTrip: whatever a Writer writes, a Reader reads back unchanged,
// also after leading garbage.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("payload"), uint8(TypeStdout), uint32(1), []byte("junk"))
	f.Add([]byte{}, uint8(TypeExit), uint32(0), []byte{})
	f.Fuzz(func(t *testing.T, payload []byte, typ uint8, id uint32, junk []byte) {
		// Junk that contains the magic could be taken for a frame; the
		// reader resynchronises on the magic by design, so keep it out.
		if bytes.Contains(junk, []byte{byte(Magic >> 8), byte(Magic & 0xff)}) ||
			(len(junk) > 0 && junk[len(junk)-1] == byte(Magic>>8)) {
			t.Skip()
		}
		var buf bytes.Buffer
		buf.Write(junk)
		if err := NewWriter(&buf).Write(Type(typ), id, payload); err != nil {
			t.Fatal(err)
		}
		r := NewReader(&buf)
		var got []byte
		for len(got) < len(payload) || (len(payload) == 0 && got == nil) {
			fr, err := r.Read()
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if fr.Type != Type(typ) || fr.ID != id {
				t.Fatalf("frame %v/%d, want %v/%d", fr.Type, fr.ID, Type(typ), id)
			}
			got = append(got, fr.Payload...)
			if len(payload) == 0 {
				break
			}
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("payload changed: %d bytes in, %d out", len(payload), len(got))
		}
		if r.Skipped != int64(len(junk)) {
			t.Fatalf("skipped %d bytes, want %d", r.Skipped, len(junk))
		}
	})
}
