package server

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the API's OpenAPI 3 document, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *Server) openAPI(c *gin.Context) { c.Data(http.StatusOK, "application/json", OpenAPI) }
