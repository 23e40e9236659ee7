package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/isol8/isol8/engine"
)

type fileRequest struct {
	SessionID string `json:"sessionId"`
	Path      string `json:"path"`
	Content   string `json:"content"`
}

// withSession runs f on the caller's existing session, marked in use (so
// it is not pruned meanwhile) and its last access refreshed.
func (s *Server) withSession(c *gin.Context, id string, f func(*engine.Engine) error) {
	sess, _, err := s.sessions.acquire(id, callerOf(c), nil)
	if err != nil {
		failErr(c, err)
		return
	}
	defer s.sessions.release(sess)
	if err := f(sess.eng); err != nil {
		failErr(c, err)
	}
}

func (s *Server) putFile(c *gin.Context) {
	var req fileRequest
	if !s.bind(c, &req, false) {
		return
	}
	if req.SessionID == "" || req.Path == "" {
		fail(c, http.StatusBadRequest, "Missing sessionId or path")
		return
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(req.Content))
	if err != nil {
		fail(c, http.StatusBadRequest, "Invalid base64 content")
		return
	}
	s.withSession(c, req.SessionID, func(e *engine.Engine) error {
		if err := e.PutFile(c.Request.Context(), req.Path, data); err != nil {
			return err
		}
		c.JSON(http.StatusOK, gin.H{"ok": true})
		return nil
	})
}

func (s *Server) getFile(c *gin.Context) {
	id, path := c.Query("sessionId"), c.Query("path")
	if id == "" || path == "" {
		fail(c, http.StatusBadRequest, "Missing sessionId or path")
		return
	}
	s.withSession(c, id, func(e *engine.Engine) error {
		data, err := e.GetFile(c.Request.Context(), path)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, gin.H{"content": base64.StdEncoding.EncodeToString(data)})
		return nil
	})
}

type cleanupRequest struct {
	Images *bool `json:"images"`
}

type cleanupCounts struct {
	Removed int      `json:"removed"`
	Failed  int      `json:"failed"`
	Errors  []string `json:"errors"`
}

// cleanup stops the caller's sessions (the master key: all of them) and
// removes the isol8 sandboxes no running process uses. Images are removed
// only for the master key (default true, as in the reference); sandboxes
// of this server and of other live processes are never touched.
func (s *Server) cleanup(c *gin.Context) {
	var req cleanupRequest
	if err := decodeJSON(readBody(c, s.cfg.Server.MaxBodyBytes), &req); err != nil {
		req = cleanupRequest{} // invalid or missing body: the defaults
	}
	cl := callerOf(c)
	images := cl.master && (req.Images == nil || *req.Images)
	s.cleanMu.Lock()
	defer s.cleanMu.Unlock()
	s.log.Info(fmt.Sprintf("[Server] Starting cleanup (sessions=true containers=true images=%t)", images))
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Minute)
	defer cancel()
	removed, errs := s.sessions.stopOwned(ctx, s.log, cl)
	out := gin.H{"ok": true, "sessions": cleanupCounts{Removed: removed, Failed: len(errs), Errors: nonNil(errs)}}
	rep, err := s.opts.Host.Cleanup(ctx, engine.CleanupOptions{Images: images})
	if err != nil {
		failErr(c, err)
		return
	}
	out["containers"] = cleanupCounts{Removed: rep.Removed, Failed: len(rep.Failed), Errors: nonNil(rep.Failed)}
	msg := fmt.Sprintf("[Server] Cleanup complete: sessions=%d/%d containers=%d/%d", removed, len(errs), rep.Removed, len(rep.Failed))
	if images {
		out["images"] = cleanupCounts{Removed: rep.ImagesRemoved, Failed: len(rep.ImagesFailed), Errors: nonNil(rep.ImagesFailed)}
		msg += fmt.Sprintf(" images=%d/%d", rep.ImagesRemoved, len(rep.ImagesFailed))
	}
	s.log.Info(msg)
	c.JSON(http.StatusOK, out)
}

func readBody(c *gin.Context, limit int64) []byte {
	var b strings.Builder
	buf := make([]byte, 4096)
	r := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
