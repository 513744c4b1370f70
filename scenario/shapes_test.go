package scenario

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestShapeScenarios parses every call shape in testdata/scenarios/shapes
// and checks the conventions they follow: every call has a leg that
// carries recpol_account, an A-leg (no parent) sets its variables one per
// set step as a real dialplan does, a B-leg carries them from its dial
// string, and every A-leg is answered at or before it is bridged (a
// recording only starts once a leg has media).
func TestShapeScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "scenarios", "shapes", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("%d shape files", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			sc, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range sc.Calls {
				for _, s := range c.Steps {
					if s.Do == DoSet && len(s.Variables) != 1 {
						t.Errorf("%s: set step %s sets %d variables, want one per step", c.ID, s, len(s.Variables))
					}
				}
				for _, l := range c.Legs {
					if l.Parent != "" && l.LoopbackOf == "" && strings.HasPrefix(l.ChannelName, "sofia/") && l.Variables["recpol_account"] == "" {
						t.Errorf("%s: B-leg %s carries no recpol_account", c.ID, l.Name)
					}
				}
				answered := map[string]bool{}
				for _, e := range c.Effects() {
					switch e.Kind {
					case EffAnswer:
						answered[e.Leg] = true
					case EffBridge:
						for _, n := range []string{e.Leg, e.Other} {
							if c.Leg(n).Parent == "" && !answered[n] {
								t.Errorf("%s: A-leg %s bridged at %d ms before it is answered", c.ID, n, e.AtMS)
							}
						}
					}
				}
				if d := c.EndMS() - c.StartMS; d < 10000 || d > 20000 {
					t.Errorf("%s lasts %d ms, want 10-20 s", c.ID, d)
				}
			}
		})
	}
}
