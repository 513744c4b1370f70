package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/recpol/recpol/compiler/isolate"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	isolate.Main() // a runtime started by a script compiles in a child: this binary
	os.Exit(testscript.RunMain(m, map[string]func() int{"recpol": Main}))
}

// TestScripts runs the CLI scenarios in testdata/script: each .txtar file
// holds the commands, their input files and the expected output.
// Set UPDATE_SCRIPTS=1 to rewrite the expected output from the actual one.
func TestScripts(t *testing.T) {
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: os.Getenv("UPDATE_SCRIPTS") == "1",
		Setup: func(env *testscript.Env) error {
			// Scripts reach the repository's testdata as $REPO/testdata.
			env.Setenv("REPO", root)
			return nil
		},
	})
}
