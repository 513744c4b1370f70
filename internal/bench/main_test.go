package bench

import (
	"os"
	"testing"

	"github.com/recpol/recpol/compiler/isolate"
)

func TestMain(m *testing.M) {
	isolate.Main() // the hot-reload figure compiles in a child worker: this test binary
	os.Exit(m.Run())
}
