package engine

import (
	"errors"
	"io"
	"testing"

	"github.com/isol8/isol8/agent"
)

// fakeResetAgent answers every Reset frame on the pipes with reply.
func fakeResetAgent(t *testing.T, reply func(w *agent.Writer, id uint32)) *agentConn {
	t.Helper()
	toAgentR, toAgentW := io.Pipe()
	fromAgentR, fromAgentW := io.Pipe()
	t.Cleanup(func() { toAgentW.Close(); fromAgentW.Close() })
	go func() {
		r, w := agent.NewReader(toAgentR), agent.NewWriter(fromAgentW)
		for {
			f, err := r.Read()
			if err != nil {
				return
			}
			if f.Type == agent.TypeReset {
				reply(w, f.ID)
			}
		}
	}()
	return newAgentConn(toAgentW, fromAgentR)
}

func allPassed() agent.ResetReport {
	var rep agent.ResetReport
	for _, name := range agent.ResetItems {
		rep.Items = append(rep.Items, agent.ResetItem{Name: name, OK: true, Micros: 10})
	}
	return rep
}

func TestResetReportDecides(t *testing.T) {
	failed := allPassed()
	failed.Items[3] = agent.ResetItem{Name: agent.ResetSockets, Detail: "sockets left: tcp: 1"}
	missing := allPassed()
	missing.Items = missing.Items[:len(missing.Items)-1]
	cases := []struct {
		name     string
		reply    func(w *agent.Writer, id uint32)
		wantItem string // "" for success; "-" for a non-checklist error
	}{
		{"all passed", func(w *agent.Writer, id uint32) { _ = w.WriteJSON(agent.TypeOK, id, allPassed()) }, ""},
		{"item failed", func(w *agent.Writer, id uint32) { _ = w.WriteJSON(agent.TypeOK, id, failed) }, agent.ResetSockets},
		{"item missing", func(w *agent.Writer, id uint32) { _ = w.WriteJSON(agent.TypeOK, id, missing) }, agent.ResetDev},
		{"old agent, bare ok", func(w *agent.Writer, id uint32) { _ = w.WriteJSON(agent.TypeOK, id, agent.OK{}) }, agent.ResetProcesses},
		{"refused", func(w *agent.Writer, id uint32) {
			_ = w.WriteJSON(agent.TypeError, id, agent.Error{Message: "an execution is still running"})
		}, "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeResetAgent(t, tc.reply)
			_, err := c.reset(t.Context())
			var check *resetCheckError
			switch tc.wantItem {
			case "":
				if err != nil {
					t.Fatalf("reset: %v", err)
				}
			case "-":
				if err == nil || errors.As(err, &check) {
					t.Fatalf("reset: %v, want a plain error", err)
				}
			default:
				if !errors.As(err, &check) || check.item != tc.wantItem {
					t.Fatalf("reset: %v, want a failed check of %q", err, tc.wantItem)
				}
			}
		})
	}
}
