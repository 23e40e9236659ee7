package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// bind decodes the JSON body into v, answering 400 (or 413 past the body
// limit) itself when it cannot. optional admits an empty body.
func (s *Server) bind(c *gin.Context, v any, optional bool) bool {
	limit := s.cfg.Server.MaxBodyBytes
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.metrics.rejected("body_too_large")
			fail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large (limit %d bytes)", limit))
			return false
		}
		fail(c, http.StatusBadRequest, "Invalid JSON body")
		return false
	}
	if optional && strings.TrimSpace(string(data)) == "" {
		return true
	}
	if err := decodeJSON(data, v); err != nil {
		s.metrics.rejected("bad_request")
		fail(c, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

// decodeJSON decodes one JSON object, naming the field of a type error.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("Invalid JSON body: %s must be %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return errors.New("Invalid JSON body")
	}
	if dec.More() {
		return errors.New("Invalid JSON body")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct", "ptr":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a number"
}
