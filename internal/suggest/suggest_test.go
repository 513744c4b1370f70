package suggest

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"enabled", "enabled", 0},
		{"enabeld", "enabled", 1}, // a transposition is one edit
		{"enable", "enabled", 1},
		{"fromat", "format", 1},
		{"onet", "onnet", 1},
		{"url", "any", 3},
		{"incoming", "inbound", 4}, // too far: synonyms suggest inbound
		{"ab", "ba", 1},
		{"ca", "abc", 3}, // optimal string alignment: no edit of a transposed pair
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
