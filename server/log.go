package server

import (
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// A client's X-Request-ID is kept when it looks like an id; otherwise the
// server makes one.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestLog gives every request an id (echoed in X-Request-ID) and logs
// one structured line when it ends.
func (s *Server) requestLog(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
	cl := callerOf(c)
	attrs := []any{
		"requestId", id, "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "durationMs", time.Since(start).Milliseconds(),
		"bytes", c.Writer.Size(), "remote", c.ClientIP(),
	}
	if cl.master {
		attrs = append(attrs, "auth", "master")
	} else if cl.keyID != "" {
		attrs = append(attrs, "auth", "apikey", "tenant", cl.tenant, "keyId", cl.keyID)
	}
	s.log.Info("request", attrs...)
}
