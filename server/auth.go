package server

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/auth"
)

// Context keys set by the middleware.
const (
	ctxCaller    = "isol8.caller"
	ctxRequestID = "isol8.requestId"
)

// caller is who a request authenticated as. Sessions are bound to the
// tenant that created them; the master key is the operator and sees every
// session.
type caller struct {
	master bool
	tenant string
	keyID  string
}

// owns reports whether the caller may see and use what tenant owns.
func (c caller) owns(tenant string) bool { return c.master || c.tenant == tenant }

// sessionOwner is the tenant recorded on a session the caller creates.
func (c caller) sessionOwner() string {
	if c.master {
		return ""
	}
	return c.tenant
}

func callerOf(c *gin.Context) caller {
	v, _ := c.Get(ctxCaller)
	cl, _ := v.(caller)
	return cl
}

var bearer = regexp.MustCompile(`(?i)^bearer\s+`)

// authenticate admits the master key and, with a key store, valid DB keys.
// Only /health is public.
func (s *Server) authenticate(c *gin.Context) {
	if c.Request.URL.Path == "/health" {
		c.Next()
		return
	}
	h := c.GetHeader("Authorization")
	if strings.TrimSpace(h) == "" {
		s.metrics.rejected("unauthenticated")
		fail(c, http.StatusUnauthorized, "Missing Authorization header")
		return
	}
	token := strings.TrimSpace(bearer.ReplaceAllString(strings.TrimSpace(h), ""))
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.MasterKey)) == 1 {
		c.Set(ctxCaller, caller{master: true})
		s.auditCaller(c, audit.Caller{KeyPrefix: "master"})
		c.Next()
		return
	}
	if s.opts.Keys != nil && token != "" {
		k, err := s.opts.Keys.Verify(c.Request.Context(), token)
		switch {
		case err == nil:
			c.Set(ctxCaller, caller{tenant: k.TenantID, keyID: k.ID})
			s.auditCaller(c, audit.Caller{Tenant: k.TenantID, KeyPrefix: k.KeyPrefix})
			c.Next()
			return
		case !errors.Is(err, ErrInvalidKey):
			s.log.Error("API key check failed", "error", err, "requestId", c.GetString(ctxRequestID))
			fail(c, http.StatusServiceUnavailable, "API key check failed")
			return
		}
	}
	s.metrics.rejected("forbidden")
	fail(c, http.StatusForbidden, "Invalid API key")
}

// auditCaller puts who is asking into the request's context, where the
// engine's audit records take it from. The master key is named, never
// quoted.
func (s *Server) auditCaller(c *gin.Context, who audit.Caller) {
	who.RequestID = c.GetString(ctxRequestID)
	c.Request = c.Request.WithContext(audit.WithCaller(c.Request.Context(), who))
}

// requireMaster guards the key administration routes.
func (s *Server) requireMaster(c *gin.Context) {
	if !callerOf(c).master {
		fail(c, http.StatusForbidden, "Master key required for this operation")
		return
	}
	if s.opts.Keys == nil {
		fail(c, http.StatusBadRequest, "DB-backed auth is not enabled")
		return
	}
	c.Next()
}

// isoTime is the API's timestamp format: UTC with milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type keyRequest struct {
	Name     *string `json:"name"`
	TenantID string  `json:"tenantId"`
	TTLMs    *int64  `json:"ttlMs"`
}

// keyTTL is the lifetime a key request asks for, checked before the
// milliseconds are turned into a Duration (which would overflow).
func (s *Server) keyTTL(ms *int64) (time.Duration, error) {
	if ms == nil {
		return time.Duration(s.cfg.Auth.DefaultTTLMs) * time.Millisecond, nil
	}
	switch {
	case *ms <= 0:
		return 0, api.InvalidArgumentf("ttlMs must be positive")
	case *ms > auth.MaxTTL.Milliseconds():
		return 0, api.InvalidArgumentf("ttlMs is too large (at most %d)", auth.MaxTTL.Milliseconds())
	}
	return time.Duration(*ms) * time.Millisecond, nil
}

func (s *Server) createKey(c *gin.Context) {
	var req keyRequest
	if !s.bind(c, &req, false) {
		return
	}
	if req.Name == nil || strings.TrimSpace(*req.Name) == "" {
		fail(c, http.StatusBadRequest, "name is required")
		return
	}
	tenant := req.TenantID
	if tenant == "" {
		tenant = "default"
	}
	ttl, err := s.keyTTL(req.TTLMs)
	if err != nil {
		s.keyStoreFailed(c, "create key", err)
		return
	}
	k, err := s.opts.Keys.Create(c.Request.Context(), *req.Name, tenant, ttl)
	if err != nil {
		s.keyStoreFailed(c, "create key", err)
		return
	}
	s.log.Info("[Server] Created API key: id=" + k.ID + " name=" + k.Name)
	c.JSON(http.StatusCreated, gin.H{
		"id": k.ID, "key": k.Token, "name": k.Name, "keyPrefix": k.KeyPrefix,
		"tenantId": k.TenantID, "expiresAt": isoTime(k.ExpiresAt),
	})
}

func (s *Server) listKeys(c *gin.Context) {
	keys, err := s.opts.Keys.List(c.Request.Context(), c.Query("tenantId"))
	if err != nil {
		s.keyStoreFailed(c, "list keys", err)
		return
	}
	out := make([]gin.H, 0, len(keys))
	for _, k := range keys {
		var used any
		if k.LastUsedAt != nil {
			used = isoTime(*k.LastUsedAt)
		}
		out = append(out, gin.H{
			"id": k.ID, "name": k.Name, "keyPrefix": k.KeyPrefix, "tenantId": k.TenantID,
			"createdAt": isoTime(k.CreatedAt), "expiresAt": isoTime(k.ExpiresAt),
			"lastUsedAt": used, "revoked": k.Revoked,
		})
	}
	c.JSON(http.StatusOK, gin.H{"keys": out})
}

func (s *Server) revokeKey(c *gin.Context) {
	id := c.Param("id")
	if err := s.opts.Keys.Revoke(c.Request.Context(), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			fail(c, http.StatusNotFound, "Key not found")
			return
		}
		s.keyStoreFailed(c, "revoke key", err)
		return
	}
	s.log.Info("[Server] Revoked API key: id=" + id)
	c.JSON(http.StatusOK, gin.H{"ok": true, "id": id})
}

func (s *Server) login(c *gin.Context) {
	var req keyRequest
	if !s.bind(c, &req, true) {
		return
	}
	name := "login-" + isoTime(time.Now())
	if req.Name != nil && strings.TrimSpace(*req.Name) != "" {
		name = *req.Name
	}
	tenant := req.TenantID
	if tenant == "" {
		tenant = "default"
	}
	ttl, err := s.keyTTL(req.TTLMs)
	if err != nil {
		s.keyStoreFailed(c, "login", err)
		return
	}
	k, err := s.opts.Keys.Create(c.Request.Context(), name, tenant, ttl)
	if err != nil {
		s.keyStoreFailed(c, "login", err)
		return
	}
	s.log.Info("[Server] Login token issued: id=" + k.ID)
	c.JSON(http.StatusOK, gin.H{"token": k.Token, "expiresAt": isoTime(k.ExpiresAt), "keyId": k.ID})
}

// keyStoreFailed answers a refused or failed key operation: bad input is
// the client's (4xx with the store's own words); anything else is the
// database's, logged in full and answered without its details.
func (s *Server) keyStoreFailed(c *gin.Context, what string, err error) {
	status := statusOf(err)
	if status < http.StatusInternalServerError {
		fail(c, status, err.Error())
		return
	}
	s.log.Error("key store: "+what, "error", err, "requestId", c.GetString(ctxRequestID))
	fail(c, status, "Key store error: "+what+" failed")
}
