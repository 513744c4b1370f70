// Package suggest finds the names a misspelt one most likely means, for
// "did you mean" in error messages: the compiler's unknown fields and
// owners, the decision table's unknown devices, the CLI's unknown
// accounts.
package suggest

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Names returns the candidates that name is most likely a misspelling of,
// best first, at most three: those at the smallest Damerau-Levenshtein
// distance (case ignored) within maxDistance(name), then, when none is that
// close, those name is a "_"-separated part of (sample_rate for
// record_sample_rate). A candidate equal to name is never suggested.
func Names(name string, candidates []string) []string {
	limit := maxDistance(name)
	best, bestDist := []string(nil), limit
	lower := strings.ToLower(name)
	for _, cand := range candidates {
		if cand == name {
			continue
		}
		d := editDistance(lower, strings.ToLower(cand))
		switch {
		case d > limit:
		case d < bestDist || best == nil:
			best, bestDist = []string{cand}, d
		case d == bestDist && !slices.Contains(best, cand):
			best = append(best, cand)
		}
	}
	if len(best) == 0 && strings.Contains(lower, "_") {
		for _, cand := range candidates {
			c := strings.ToLower(cand)
			if c != lower && (strings.HasSuffix(c, "_"+lower) || strings.HasPrefix(c, lower+"_")) {
				best = append(best, cand)
			}
		}
	}
	slices.Sort(best)
	best = slices.Compact(best)
	return best[:min(len(best), 3)]
}

// maxDistance is how far a name may be from a suggestion: two edits, one
// for names of five characters or fewer, so that a short name is not
// "corrected" into an unrelated one (url into any).
func maxDistance(name string) int {
	if utf8.RuneCountInString(name) <= 5 {
		return 1
	}
	return 2
}

// editDistance is the optimal-string-alignment Damerau-Levenshtein
// distance between a and b: insertions, deletions, substitutions and
// transpositions of adjacent characters (enabeld is one edit from
// enabled).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
