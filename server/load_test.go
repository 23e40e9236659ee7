package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
)

func percentiles(ds []time.Duration) (p50, p95 time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[len(ds)*95/100]
}

// rssKB reads this process's resident set (the server runs in it).
func rssKB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func post(hc *http.Client, url string, body any) (int, []byte, error) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+testMaster)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), nil
}

// 1,000 /execute requests from 16 clients: no error, every answer right,
// p50/p95 and the server's memory reported; then 100 live sessions at
// once, each keeping its own state.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	ts := newTestServer(t, func(c *config.Config) {
		c.MaxConcurrent = 8
		c.PoolSize = config.PoolSize{Clean: 8, Dirty: 8}
		c.Server.MaxQueue = 1000
	})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	url := ts.url + "/execute"
	rss0 := rssKB(t)
	const total, clients = 1000, 16
	var mu sync.Mutex
	var lat []time.Duration
	var failures []string
	var wg sync.WaitGroup
	next := make(chan int, total)
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				code, body, err := post(hc, url, ex("bash", fmt.Sprintf("echo req-%d", i)))
				d := time.Since(t0)
				var res api.Result
				json.Unmarshal(body, &res)
				mu.Lock()
				lat = append(lat, d)
				if err != nil || code != 200 || res.Stdout != fmt.Sprintf("req-%d", i) {
					failures = append(failures, fmt.Sprintf("%d: %d %v %s", i, code, err, body))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	p50, p95 := percentiles(lat)
	rss1 := rssKB(t)
	t.Logf("load: %d /execute from %d clients in %s (%.0f req/s): p50 %s p95 %s; RSS %d MiB -> %d MiB",
		total, clients, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(),
		p50.Round(100*time.Microsecond), p95.Round(100*time.Microsecond), rss0/1024, rss1/1024)
	if rss1-rss0 > 512<<10 {
		t.Errorf("server RSS grew by %d MiB", (rss1-rss0)/1024)
	}

	// 100 live persistent sessions.
	const sessions = 100
	var sw sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan string, sessions*2)
	for i := 0; i < sessions; i++ {
		sw.Add(1)
		go func() {
			defer sw.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("load-%d", i)
			e := ex("bash", fmt.Sprintf("echo %d > /sandbox/me", i))
			e["sessionId"] = id
			if code, body, err := post(hc, url, e); err != nil || code != 200 {
				errs <- fmt.Sprintf("%s create: %d %v %s", id, code, err, body)
			}
		}()
	}
	sw.Wait()
	if n := len(ts.do("GET", "/sessions", testMaster, nil).json(t)["sessions"].([]any)); n != sessions {
		t.Fatalf("%d live sessions, want %d", n, sessions)
	}
	for i := 0; i < sessions; i++ {
		sw.Add(1)
		go func() {
			defer sw.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			e := ex("bash", "cat /sandbox/me")
			e["sessionId"] = fmt.Sprintf("load-%d", i)
			code, body, err := post(hc, url, e)
			var res api.Result
			json.Unmarshal(body, &res)
			if err != nil || code != 200 || res.Stdout != strconv.Itoa(i) {
				errs <- fmt.Sprintf("load-%d reuse: %d %v %s", i, code, err, body)
			}
		}()
	}
	sw.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	t.Logf("100 sessions live; RSS %d MiB", rssKB(t)/1024)
}

// TestLatency compares warm POST /execute with the same execution through
// the library on the same host (ISOL8_BENCH=1).
func TestLatency(t *testing.T) {
	if os.Getenv("ISOL8_BENCH") != "1" {
		t.Skip("set ISOL8_BENCH=1 to measure")
	}
	ts := newTestServer(t, nil)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	view, err := ts.host.Session(engineOptions(ts.srv.cfg, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Stop(t.Context())
	const n = 200
	for _, rt := range []struct{ name, code string }{{"python", "print(1)"}, {"bash", "echo 1"}} {
		var httpLat, libLat []time.Duration
		for i := 0; i < n+10; i++ {
			t0 := time.Now()
			code, body, err := post(hc, ts.url+"/execute", ex(rt.name, rt.code))
			d := time.Since(t0)
			if err != nil || code != 200 {
				t.Fatalf("%d %v %s", code, err, body)
			}
			t1 := time.Now()
			if _, err := view.Execute(t.Context(), api.Request{Runtime: rt.name, Code: rt.code}); err != nil {
				t.Fatal(err)
			}
			d2 := time.Since(t1)
			if i >= 10 { // the first ones warm the pool
				httpLat = append(httpLat, d)
				libLat = append(libLat, d2)
			}
		}
		h50, h95 := percentiles(httpLat)
		l50, l95 := percentiles(libLat)
		t.Logf("%s warm: POST /execute p50 %s p95 %s | library p50 %s p95 %s | HTTP adds %s at p50",
			rt.name, h50.Round(10*time.Microsecond), h95.Round(10*time.Microsecond),
			l50.Round(10*time.Microsecond), l95.Round(10*time.Microsecond), (h50 - l50).Round(10*time.Microsecond))
	}
}
