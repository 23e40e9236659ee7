package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isol8/isol8/api"
)

// newTransport is one execution's upstream HTTP client: every connection
// through the guard, none through the engine's own proxy settings.
func (s *Server) newTransport(ss *session) *http.Transport {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return s.dialer(ss, host).DialContext(ctx, network, addr)
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   s.cfg.ConnectTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// serveForward relays an absolute-URI request ("GET http://host/path").
func (s *Server) serveForward(ss *session, w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	if r.URL == nil || !r.URL.IsAbs() || r.URL.Host == "" {
		plainError(w, http.StatusBadRequest, "isol8: not a proxy request (send absolute-URI requests or CONNECT)")
		return
	}
	if !strings.EqualFold(r.URL.Scheme, "http") {
		plainError(w, http.StatusBadRequest, "isol8: only http:// requests are forwarded; use CONNECT for https")
		return
	}
	tg, err := parseTarget(r.URL.Hostname(), r.URL.Port(), "80")
	if err != nil {
		plainError(w, http.StatusBadRequest, "isol8: invalid request target: "+err.Error())
		return
	}
	path := r.URL.RequestURI()
	entry := ss.begin(r.Method, tg.host, &path)
	d := ss.pol.Rules.Decide(tg.host)
	if !d.Allowed {
		ss.block(r.Method, tg.host, "filter_mismatch")
		body := "isol8: request to " + tg.host + " blocked by network filter"
		plainError(w, http.StatusForbidden, body)
		ss.finish(entry, t0, func(e *api.NetworkLogEntry) {
			e.Action, e.Rule, e.Status, e.DurationMs = api.NetworkBlock, d.Rule, http.StatusForbidden, 0
		})
		return
	}
	var sent, recv atomic.Int64
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingReader{r: r.Body, n: &sent}
	}
	cw := &countingWriter{ResponseWriter: w, n: &recv}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(ss.ctx, cancel)
	defer stop()
	rule, status := d.Rule, 0
	action := api.NetworkAllow
	rp := &httputil.ReverseProxy{
		Transport: ss.tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = tg.hostPort()
			// The absolute URI names the destination; a Host header
			// naming another host (fronting) is replaced.
			pr.Out.Host = ""
			for k := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(k), "proxy-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if reason, ok := guardReason(err); ok {
				ss.block(r.Method, tg.host, "private_destination")
				action, rule, status = api.NetworkBlock, reason, http.StatusForbidden
				plainError(w, http.StatusForbidden, "isol8: request to "+tg.host+" blocked: "+reason+" not allowed")
				return
			}
			status = http.StatusBadGateway
			s.cfg.Logger.Debug("proxy: upstream failed", "host", tg.hostPort(), "error", err)
			plainError(w, http.StatusBadGateway, "isol8: proxy error: connection to "+tg.hostPort()+" failed")
		},
		BufferPool: bufPool{},
	}
	// Deferred: the reverse proxy aborts the handler with a panic when the
	// client goes away mid-body.
	defer ss.finish(entry, t0, func(e *api.NetworkLogEntry) {
		e.Action, e.Rule, e.Status = action, rule, status
		e.BytesSent, e.BytesReceived = sent.Load(), recv.Load()
	})
	rp.ServeHTTP(cw, r.WithContext(ctx))
}

type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach flush and hijack.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// isTimeout reports a deadline error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bufPool gives the reverse proxy larger copy buffers than its 32 KiB
// default: a 100 MB download is ~1.5x faster with them.
type bufPool struct{}

var copyBufs = sync.Pool{New: func() any { return make([]byte, 128<<10) }}

func (bufPool) Get() []byte { return copyBufs.Get().([]byte) }

//lint:ignore SA6002 one small allocation per Put is cheaper than the copies it saves
func (bufPool) Put(b []byte) { copyBufs.Put(b) }
