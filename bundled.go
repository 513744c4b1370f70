// Package recpol carries the repository's bundled example policy and the
// demo's scenarios inside the binary, so that `recpol demo` runs from any
// directory and after `go install`. The files are the ones under
// testdata/: there is one copy of them, embedded from where the tests and
// the README use them.
package recpol

import (
	"embed"
	"io/fs"
)

//go:embed testdata/policies/example/*.cue testdata/scenarios/demo-1.json testdata/scenarios/demo-2.json
var bundled embed.FS

// Bundled paths, inside Files.
const (
	ExamplePolicyDir = "testdata/policies/example"
	DemoScenario1    = "testdata/scenarios/demo-1.json"
	DemoScenario2    = "testdata/scenarios/demo-2.json"
)

// Files is the bundled example policy and demo scenarios, at their paths
// in the repository.
func Files() fs.FS { return bundled }
