package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cobraSuggestions extracts the command names cobra proposes in its
// "unknown command" error ("Did you mean this?\n\trun\n").
func cobraSuggestions(msg string) []string {
	_, rest, ok := strings.Cut(msg, "Did you mean this?")
	if !ok {
		return nil
	}
	return strings.Fields(rest)
}

// suggestFlag returns the visible flag of c closest to name (edit distance
// at most 2, like cobra's command suggestions), or "".
func suggestFlag(c *cobra.Command, name string) string {
	best, bestDist := "", 3
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if d := editDistance(name, f.Name); d < bestDist || (d == bestDist && best == "") {
			best, bestDist = f.Name, d
		}
	})
	if bestDist > 2 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
