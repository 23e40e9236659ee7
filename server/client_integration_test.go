package server

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/client"
)

func collect(t *testing.T, ch <-chan api.Event) (out string, exit string) {
	t.Helper()
	for ev := range ch {
		switch ev.Type {
		case api.EventStdout:
			out += ev.Data
		case api.EventExit:
			exit = ev.Data
		case api.EventError:
			t.Errorf("error event: %s", ev.Data)
		}
	}
	return out, exit
}

// The Go client against a real server, over TCP and a unix socket.
func TestClientAgainstServer(t *testing.T) {
	ts := newTestServer(t, nil)
	sock := filepath.Join(t.TempDir(), "isol8.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: ts.srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })

	for _, host := range []string{ts.url, "unix://" + sock} {
		c, err := client.New(client.Options{Host: host, APIKey: testMaster})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if err := c.Start(ctx, api.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := c.Execute(ctx, api.Request{Runtime: "python", Code: `print("Hello Remote")`})
		if err != nil || res.ExitCode != 0 || res.Stdout != "Hello Remote" {
			t.Fatalf("%s: execute: %v %+v", host, err, res)
		}
		ch, err := c.ExecuteStream(ctx, api.Request{Runtime: "bash", Code: "echo a; echo b; exit 5"})
		if err != nil {
			t.Fatal(err)
		}
		if out, exit := collect(t, ch); out != "a\nb\n" || exit != "5" {
			t.Fatalf("%s: stream %q exit %s", host, out, exit)
		}
		in := client.NewInput()
		ch, err = c.ExecuteInteractive(ctx, api.Request{Runtime: "python", Code: "print(input()[::-1])"}, in)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(ctx, []byte("olleh\n"))
		if out, exit := collect(t, ch); out != "hello\n" || exit != "0" {
			t.Fatalf("%s: interactive %q %s", host, out, exit)
		}
		_, err = c.Execute(ctx, api.Request{Runtime: "cobol", Code: "1"})
		if !api.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "Execution failed: Unknown runtime") {
			t.Fatalf("%s: refused: %v", host, err)
		}
	}

	bad, _ := client.New(client.Options{Host: ts.url, APIKey: "wrong"})
	if _, err := bad.Execute(t.Context(), api.Request{Runtime: "python", Code: "1"}); err == nil || !strings.Contains(err.Error(), "Invalid API key") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := bad.ExecuteStream(t.Context(), api.Request{Runtime: "python", Code: "1"}); err == nil || !strings.Contains(err.Error(), "Invalid API key") {
		t.Fatalf("wrong key stream: %v", err)
	}

	// A session-bound client: state, files, Stop deletes the session.
	s, _ := client.New(client.Options{Host: ts.url, APIKey: testMaster, SessionID: "integ-client"})
	ctx := context.Background()
	if _, err := s.Execute(ctx, api.Request{Runtime: "bash", Code: "true"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "/sandbox/data.txt", []byte("remote-file-content")); err != nil {
		t.Fatal(err)
	}
	ch, _ := s.ExecuteStream(ctx, api.Request{Runtime: "bash", Code: "cat /sandbox/data.txt"})
	if out, _ := collect(t, ch); out != "remote-file-content" {
		t.Fatalf("WS stream on session: %q", out)
	}
	if data, err := s.GetFile(ctx, "/sandbox/data.txt"); err != nil || string(data) != "remote-file-content" {
		t.Fatalf("GetFile: %v %q", err, data)
	}
	if list, _ := s.ListSessions(ctx); len(list) != 1 || list[0].ID != "integ-client" {
		t.Fatalf("sessions %v", list)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSessions(ctx); len(list) != 0 {
		t.Fatalf("after Stop: %v", list)
	}
	if err := s.DeleteSession(ctx, "never-existed"); err != nil {
		t.Fatal(err)
	}
}
