package cli

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{"recpol": Main}))
}

// TestScripts runs the CLI scenarios in testdata/script: each .txtar file
// holds the commands, their input files and the expected output.
// Set UPDATE_SCRIPTS=1 to rewrite the expected output from the actual one.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: os.Getenv("UPDATE_SCRIPTS") == "1",
	})
}
