package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/isol8/isol8/netguard"
)

// percentile of sorted durations, in microseconds.
func percentile(d []time.Duration, p float64) float64 {
	i := int(float64(len(d)-1) * p)
	return float64(d[i].Microseconds())
}

func benchClient(proxyAddr string) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	if proxyAddr != "" {
		u, _ := url.Parse("http://" + proxyAddr)
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr}
}

func benchProxy(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := New(ln, Config{Guard: netguard.Policy{AllowPrivateDestinations: true}})
	b.Cleanup(func() { s.Close() })
	s.Attach(Policy{Rules: mustCompile(b, []string{`^127\.0\.0\.1$`}), Log: true})
	return ln.Addr().String()
}

func mustCompile(b *testing.B, allow []string) *Rules {
	r, err := Compile(allow, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkLatency: one small GET on loopback, direct and through the
// proxy (keep-alive on both legs), with p50/p95 per request.
func BenchmarkLatency(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	for _, mode := range []string{"direct", "proxied"} {
		b.Run(mode, func(b *testing.B) {
			proxyAddr := ""
			if mode == "proxied" {
				proxyAddr = benchProxy(b)
			}
			c := benchClient(proxyAddr)
			var ds []time.Duration
			for b.Loop() {
				t0 := time.Now()
				resp, err := c.Get(up.URL + "/")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ds = append(ds, time.Since(t0))
			}
			slices.Sort(ds)
			b.ReportMetric(percentile(ds, 0.5), "p50-µs")
			b.ReportMetric(percentile(ds, 0.95), "p95-µs")
		})
	}
}

// BenchmarkThroughput: a 100 MB download on loopback, direct, through the
// proxy's HTTP forwarding and through a CONNECT tunnel.
func BenchmarkThroughput(b *testing.B) {
	const size = 100 << 20
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for i := 0; i < size/len(chunk); i++ {
			w.Write(chunk)
		}
	}))
	defer up.Close()
	for _, mode := range []string{"direct", "forward", "tunnel"} {
		b.Run(mode, func(b *testing.B) {
			var c *http.Client
			switch mode {
			case "direct":
				c = benchClient("")
			case "forward":
				c = benchClient(benchProxy(b))
			case "tunnel":
				addr := benchProxy(b)
				c = &http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, _, target string) (net.Conn, error) {
					return dialTunnel(addr, target)
				}}}
			}
			b.SetBytes(size)
			for b.Loop() {
				resp, err := c.Get(up.URL + "/")
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != size {
					b.Fatalf("got %d bytes", n)
				}
			}
		})
	}
}

// dialTunnel opens a CONNECT tunnel to target through the proxy.
func dialTunnel(proxyAddr, target string) (net.Conn, error) {
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	buf := make([]byte, len("HTTP/1.1 200 Connection Established\r\n\r\n"))
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) {
		c.Close()
		return nil, fmt.Errorf("tunnel: %q %v", buf, err)
	}
	return c, nil
}
