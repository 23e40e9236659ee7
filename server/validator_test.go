package server

import (
	"net/http"
	"testing"
)

// recTB records the errors the validator reports.
type recTB struct {
	testing.TB
	errs int
}

func (r *recTB) Errorf(string, ...any) { r.errs++ }
func (r *recTB) Helper()               {}

// The response validator every route test relies on does reject bodies
// that do not match the document.
func TestOpenAPIValidatorRejects(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct{ path, body string }{
		{"/health", `{"status":"bad"}`},
		{"/sessions", `{"sessions":[{"id":1}]}`},
		{"/nope", `not an error object`},
	} {
		req, _ := http.NewRequest("GET", "http://x"+tc.path, nil)
		rec := &recTB{TB: t}
		validate(rec, req, response{status: 200, header: jsonCT, body: []byte(tc.body)})
		if rec.errs == 0 {
			t.Errorf("validator accepted %s %s", tc.path, tc.body)
		}
	}
}
