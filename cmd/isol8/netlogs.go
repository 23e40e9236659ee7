package main

import (
	"encoding/json"
	"fmt"

	"github.com/isol8/isol8/api"
)

// printNetworkLogs prints a buffered run's proxy log (--log-network) on
// stderr: a blank line, a header, one JSON object per request.
func (a *app) printNetworkLogs(logs []api.NetworkLogEntry) {
	if len(logs) == 0 {
		return
	}
	fmt.Fprintln(a.stderr)
	fmt.Fprintln(a.stderr, "--- Network Logs ---")
	for _, l := range logs {
		b, err := json.Marshal(l)
		if err != nil {
			continue
		}
		fmt.Fprintln(a.stderr, string(b))
	}
}
