package api

// StartOptions control an engine's Start.
type StartOptions struct {
	// Prewarm fills the warm pool of these runtimes' images before Start
	// returns (building missing images first).
	Prewarm []string `json:"prewarm,omitempty"`
}
