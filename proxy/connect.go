package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/netguard"
)

// Limits of the ClientHello peek.
const (
	helloTimeout  = 10 * time.Second
	maxHelloBytes = 64 << 10
)

// serveConnect opens a tunnel ("CONNECT host:port").
func (s *Server) serveConnect(ss *session, w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, ""
	}
	tg, err := parseTarget(host, port, "443")
	if err != nil {
		plainError(w, http.StatusBadRequest, "isol8: invalid CONNECT target: "+err.Error())
		return
	}
	entry := ss.begin(http.MethodConnect, tg.host, nil)
	var sent, recv atomic.Int64
	status, action := 0, api.NetworkAllow
	d := ss.pol.Rules.Decide(tg.host)
	rule := d.Rule
	defer ss.finish(entry, t0, func(e *api.NetworkLogEntry) {
		e.Action, e.Rule, e.Status = action, rule, status
		e.BytesSent, e.BytesReceived = sent.Load(), recv.Load()
		if action == api.NetworkBlock && status == http.StatusForbidden {
			e.DurationMs = 0
		}
	})
	refuse := func(code int, why, reason, body string) {
		action, rule, status = api.NetworkBlock, why, code
		if reason != "" {
			ss.block(http.MethodConnect, tg.host, reason)
		}
		plainError(w, code, body)
	}
	if !d.Allowed {
		refuse(http.StatusForbidden, d.Rule, "filter_mismatch", "isol8: CONNECT to "+tg.host+" blocked by network filter")
		return
	}
	if !ss.acquireTunnel(s.cfg.MaxTunnels) {
		refuse(http.StatusServiceUnavailable, "tunnel limit", "", "isol8: too many open tunnels")
		return
	}
	defer ss.releaseTunnel()

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ConnectTimeout)
	stop := context.AfterFunc(ss.ctx, cancel)
	up, err := s.dialer(ss, tg.host).DialContext(ctx, "tcp", tg.hostPort())
	stop()
	cancel()
	if err != nil {
		if reason, ok := guardReason(err); ok {
			refuse(http.StatusForbidden, reason, "private_destination", "isol8: CONNECT to "+tg.host+" blocked: "+reason+" not allowed")
			return
		}
		status = http.StatusBadGateway
		s.cfg.Logger.Debug("proxy: upstream connect failed", "host", tg.hostPort(), "error", err)
		plainError(w, http.StatusBadGateway, "isol8: proxy error: connection to "+tg.hostPort()+" failed")
		return
	}
	defer up.Close()

	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		status = http.StatusInternalServerError
		return
	}
	defer client.Close()
	status = http.StatusOK
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		return
	}
	// Bytes the client sent after the CONNECT line, already buffered.
	in := io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), client)

	// Nothing the client sends goes upstream before its first bytes are
	// checked; the server's bytes flow at once (protocols where the server
	// speaks first, which TLS is not).
	gate := func() bool {
		first, why := checkClientHello(client, in, tg, helloTimeout)
		if why != "" {
			action, rule = api.NetworkBlock, why
			ss.block(http.MethodConnect, tg.host, "sni_mismatch")
			return false
		}
		if len(first) > 0 {
			n, err := up.Write(first)
			sent.Add(int64(n))
			return err == nil
		}
		return true
	}
	stopTunnel := context.AfterFunc(ss.ctx, func() { client.Close(); up.Close() })
	defer stopTunnel()
	relay(client, in, up, s.cfg.IdleTimeout, &sent, &recv, gate)
}

func (ss *session) acquireTunnel(max int) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.tunnels >= max {
		return false
	}
	ss.tunnels++
	return true
}

func (ss *session) releaseTunnel() {
	ss.mu.Lock()
	ss.tunnels--
	ss.mu.Unlock()
}

// checkClientHello reads the client's first bytes of the tunnel. When they
// are a TLS ClientHello, its server name must be the CONNECT host: another
// name would let an allowed front carry traffic for a host the filter
// refuses. A name host needs a server name; an IP host takes none. A tunnel
// to port 443 must carry TLS. It returns the bytes read, to forward, and
// why the tunnel is refused ("" when it is not).
func checkClientHello(client net.Conn, in io.Reader, tg target, timeout time.Duration) ([]byte, string) {
	_ = client.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = client.SetReadDeadline(time.Time{}) }()
	var rec bytes.Buffer
	br := bufio.NewReader(io.TeeReader(io.LimitReader(in, maxHelloBytes), &rec))
	b, err := br.Peek(1)
	if err != nil {
		if tg.port == "443" {
			return nil, "sni mismatch (no TLS ClientHello)"
		}
		// A client that sends nothing first (server-speaks-first
		// protocols): nothing to check.
		return nil, ""
	}
	if b[0] != 0x16 { // not a TLS handshake record
		if tg.port == "443" {
			return nil, "sni mismatch (not TLS)"
		}
		return rec.Bytes(), ""
	}
	sni, ok := readSNI(br)
	if !ok {
		return nil, "sni mismatch (unreadable ClientHello)"
	}
	_, isIP := netguard.ParseIP(tg.host)
	switch {
	case sni == "" && isIP:
		return rec.Bytes(), ""
	case sni == "":
		return nil, "sni mismatch (none sent)"
	}
	n, err := netguard.NormalizeHost(sni)
	if err != nil || n != tg.host {
		return nil, "sni mismatch (" + sni + ")"
	}
	return rec.Bytes(), ""
}

var errHelloRead = errors.New("client hello read")

// readSNI parses a ClientHello with crypto/tls's own parser: a server
// handshake over a connection that only reads, stopped as soon as the
// hello is known.
func readSNI(r io.Reader) (string, bool) {
	var sni string
	var got bool
	conn := tls.Server(readOnlyConn{r: r}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni, got = h.ServerName, true
			return nil, errHelloRead
		},
	})
	_ = conn.Handshake()
	return sni, got
}

// readOnlyConn feeds a TLS handshake from r and swallows what it writes.
type readOnlyConn struct{ r io.Reader }

func (c readOnlyConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c readOnlyConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c readOnlyConn) Close() error                     { return nil }
func (c readOnlyConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c readOnlyConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (c readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (c readOnlyConn) SetWriteDeadline(time.Time) error { return nil }

// relay copies both ways until either side closes or nothing moves for
// idle.
// The client-to-upstream direction starts only when gate passes; when it
// does not, both connections are closed.
func relay(client net.Conn, in io.Reader, up net.Conn, idle time.Duration, sent, recv *atomic.Int64, gate func() bool) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	go func() {
		if !gate() {
			_ = client.Close()
			_ = up.Close()
			done <- struct{}{}
			return
		}
		copyIdle(up, in, client, idle, &last, sent)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		copyIdle(client, up, up, idle, &last, recv)
		if cw, ok := client.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	// One side finished: the other may still drain (a half-closed
	// request whose response is flowing), up to the idle timeout. A
	// refused gate has closed both, so the other ends at once.
	select {
	case <-done:
		return
	case <-time.After(idle):
	}
	_ = client.Close()
	_ = up.Close()
	<-done
}

// copyIdle copies src to dst. rc is the connection src reads from, whose
// read deadline enforces the idle timeout shared by both directions.
func copyIdle(dst io.Writer, src io.Reader, rc net.Conn, idle time.Duration, last *atomic.Int64, n *atomic.Int64) {
	buf := make([]byte, 128<<10)
	for {
		_ = rc.SetReadDeadline(time.Now().Add(idle))
		k, err := src.Read(buf)
		if k > 0 {
			last.Store(time.Now().UnixNano())
			w, werr := dst.Write(buf[:k])
			n.Add(int64(w))
			if werr != nil {
				return
			}
		}
		if err != nil {
			if isTimeout(err) && time.Since(time.Unix(0, last.Load())) < idle {
				continue // the other direction is busy
			}
			return
		}
	}
}
