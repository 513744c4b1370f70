// Command recpol turns call-recording policy written in CUE into a versioned
// decision table, simulates it, and executes it beside FreeSWITCH.
package main

import (
	"os"

	"github.com/recpol/recpol/cmd/recpol/internal/cli"
	"github.com/recpol/recpol/compiler/isolate"
)

func main() {
	// A runtime compiles its policy in a child process: this program,
	// started again as a compile worker.
	isolate.Main()
	os.Exit(cli.Main())
}
