package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteJSON(TypeExec, 7, Exec{Argv: []string{"python3", "-c", "print(1)"}, TimeoutMs: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(TypeStdout, 7, []byte("raw \x00\xff bytes")); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(TypeFileEOF, 7, nil); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	f, err := r.Read()
	if err != nil || f.Type != TypeExec || f.ID != 7 {
		t.Fatalf("frame %+v err %v", f, err)
	}
	var ex Exec
	if err := f.Decode(&ex); err != nil || ex.Argv[2] != "print(1)" || ex.TimeoutMs != 1000 {
		t.Fatalf("decoded %+v err %v", ex, err)
	}
	if f, err = r.Read(); err != nil || string(f.Payload) != "raw \x00\xff bytes" {
		t.Fatalf("raw frame %+v err %v", f, err)
	}
	if f, err = r.Read(); err != nil || f.Type != TypeFileEOF || len(f.Payload) != 0 {
		t.Fatalf("empty frame %+v err %v", f, err)
	}
	if _, err = r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestLargePayloadIsSplit(t *testing.T) {
	var buf bytes.Buffer
	data := bytes.Repeat([]byte("x"), 2*MaxPayload+10)
	if err := NewWriter(&buf).Write(TypeFileData, 3, data); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	var got []byte
	for n := 0; n < 3; n++ {
		f, err := r.Read()
		if err != nil || f.Type != TypeFileData || f.ID != 3 || len(f.Payload) > MaxPayload {
			t.Fatalf("frame %d: %v %v %d", n, err, f.Type, len(f.Payload))
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("split payload does not reassemble")
	}
}

func TestReaderResynchronises(t *testing.T) {
	var frame bytes.Buffer
	if err := NewWriter(&frame).Write(TypeStderr, 1, []byte("after garbage")); err != nil {
		t.Fatal(err)
	}
	// Garbage that contains a lone first magic byte, then a real frame.
	garbage := []byte{'h', 'i', 0x15, 'x', 0x15}
	r := NewReader(io.MultiReader(bytes.NewReader(garbage), &frame))
	f, err := r.Read()
	if err != nil || string(f.Payload) != "after garbage" {
		t.Fatalf("frame %+v err %v", f, err)
	}
	if r.Skipped != int64(len(garbage)) {
		t.Fatalf("skipped %d, want %d", r.Skipped, len(garbage))
	}
}

func TestReaderRejects(t *testing.T) {
	hdr := func(version byte, n uint32) []byte {
		b := make([]byte, HeaderSize)
		binary.BigEndian.PutUint16(b[0:2], Magic)
		b[2] = version
		b[3] = byte(TypeStdout)
		binary.BigEndian.PutUint32(b[8:12], n)
		return b
	}
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"too large", hdr(ProtocolVersion, MaxPayload+1), ErrTooLarge},
		{"other version", hdr(ProtocolVersion+1, 0), ErrVersion},
		{"truncated payload", append(hdr(ProtocolVersion, 10), 'a'), io.ErrUnexpectedEOF},
		{"truncated header", hdr(ProtocolVersion, 0)[:5], io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.input)).Read()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWriterConcurrentFramesDoNotInterleave(t *testing.T) {
	pr, pw := io.Pipe()
	w := NewWriter(pw)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				_ = w.Write(TypeStdout, uint32(i), []byte(strings.Repeat(string(rune('a'+i)), 1000)))
			}
		}()
	}
	go func() { wg.Wait(); pw.Close() }()
	r := NewReader(pr)
	n := 0
	for {
		f, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Payload[0] != byte('a'+f.ID) || strings.Count(string(f.Payload), string(f.Payload[:1])) != 1000 {
			t.Fatalf("interleaved frame for id %d", f.ID)
		}
		n++
	}
	if n != 400 || r.Skipped != 0 {
		t.Fatalf("read %d frames, skipped %d", n, r.Skipped)
	}
}
