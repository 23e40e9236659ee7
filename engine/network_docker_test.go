package engine

import (
	"strings"
	"testing"
	"time"
)

// The filtered network on both drivers: the proxy is served inside the
// sandbox's own namespace (on Docker, the container's init's), allowed
// hosts are reached and others refused, nothing else leads out, and the
// fast pool reuses the sandbox.
func TestNetworkFilteredDrivers(t *testing.T) { matrix(t, testNetworkFiltered) }

func testNetworkFiltered(t *testing.T, b backend) {
	srv := startNetServers(t)
	o := filteredOpts([]string{`^a\.isol8\.test$`}, nil)
	o.AllowPrivateDestinations, o.Resolver = true, testResolver{}
	o.PoolStrategy, o.PoolSize = PoolFast, &PoolSize{Clean: 1, Dirty: 1}
	e := b.engine(t, o)
	mustHaveImage(t, e, "python")
	code := fetchCode("http://a.isol8.test:"+srv.httpPort+"/", "http://b.isol8.test:"+srv.httpPort+"/",
		"https://a.isol8.test:"+srv.tlsPort+"/") +
		"\nimport socket\ns = socket.socket(); s.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', " + srv.httpPort + "))\n    print('direct connected')\nexcept OSError:\n    print('direct refused')\n"
	want := []string{"200 hello a.isol8.test /", "403 isol8: request to b.isol8.test blocked by network filter",
		"200 hello a.isol8.test /", "direct refused"}
	var ids []string
	for i := range 2 {
		if i > 0 {
			time.Sleep(300 * time.Millisecond) // the reset runs in the background
		}
		res := runPy(t, e, code)
		if got := lines(res.Stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("run %d: %q (stderr %q)", i, res.Stdout, res.Stderr)
		}
		if len(res.NetworkLogs) != 3 {
			t.Errorf("run %d: network logs %+v", i, res.NetworkLogs)
		}
		ids = append(ids, res.ContainerID)
	}
	if ids[0] != ids[1] {
		t.Errorf("the filtered sandbox was not reused: %v", ids)
	}
}
