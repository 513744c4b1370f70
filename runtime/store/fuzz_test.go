package store

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzValidName checks the name validation that guards every path
// component and every event-socket argument the store builds: an accepted
// name is one path component that stays inside its directory and carries
// nothing an event-socket command or a URL could misread.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"acme", "rec-1.wav", "..", ".", "../x", "/etc", "a/b", `a\b`, "a b", "a\nb", "{x}",
		"a%20b", "a..b", strings.Repeat("a", 129), "-a", "é", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidName(s) {
			return
		}
		if len(s) == 0 || len(s) > 128 {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
		if strings.ContainsAny(s, "/\\%{}=,'\"") || strings.Contains(s, "..") || s == "." {
			t.Fatalf("accepted %q", s)
		}
		if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0 {
			t.Fatalf("accepted %q with a space, control or non-ASCII character", s)
		}
		root := "/spool/x"
		if p := filepath.Join(root, s); filepath.Dir(p) != root || filepath.Base(p) != s {
			t.Fatalf("%q escapes its directory: %s", s, p)
		}
	})
}
