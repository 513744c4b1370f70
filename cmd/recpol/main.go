// Command recpol turns call-recording policy written in CUE into a versioned
// decision table, simulates it, and executes it beside FreeSWITCH.
package main

import (
	"os"

	"github.com/recpol/recpol/cmd/recpol/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
