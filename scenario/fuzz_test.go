package scenario

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse parses arbitrary scenario files: the parser must never panic,
// every error it reports carries a position, and an accepted scenario
// validates.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "scenarios", "*.json"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil && len(data) < 8<<10 {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"calls":[{"id":"c","legs":[{"name":"a"}],"steps":[{"do":"create","leg":"a"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("s.json", data)
		if err != nil {
			if es, ok := err.(Errors); ok {
				for _, e := range es {
					if e.File == "" {
						t.Fatalf("error without a position: %v", e)
					}
				}
			}
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("a parsed scenario does not validate: %v", err)
		}
		_ = sc.Clone()
	})
}
