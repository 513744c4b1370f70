// Package version says which build of recpol runs: the module version,
// the VCS revision and time the Go toolchain stamps into the binary, and
// what the Makefile passes by -ldflags where the toolchain cannot (a build
// from a tarball, or with -buildvcs=false).
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Set by the Makefile: -ldflags "-X github.com/recpol/recpol/internal/version.revision=... -X ...time=...".
// They win over what the toolchain stamped only when that is missing.
var (
	revision string
	time     string
)

// Info is one build's identity.
type Info struct {
	// Version is the module version ("v1.2.3", or "(devel)" for a build
	// from a checkout).
	Version string `json:"version"`
	// Revision is the VCS commit, with "+dirty" when the tree had
	// uncommitted changes; empty when unknown.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time (RFC 3339); empty when unknown.
	Time string `json:"time,omitempty"`
	// Go is the toolchain that built the binary.
	Go string `json:"go"`
}

// Get reads the running binary's build information.
func Get() Info {
	in := Info{Version: "(devel)", Go: "unknown", Revision: revision, Time: time}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	return fromBuildInfo(bi, revision, time)
}

func fromBuildInfo(bi *debug.BuildInfo, rev, at string) Info {
	in := Info{Version: "(devel)", Go: bi.GoVersion, Revision: rev, Time: at}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if in.Revision == "" {
				in.Revision = s.Value
			}
		case "vcs.time":
			if in.Time == "" {
				in.Time = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && in.Revision != "" && !strings.HasSuffix(in.Revision, "+dirty") {
		in.Revision += "+dirty"
	}
	return in
}

// String is the one-line form: "recpol (devel) commit 0123abcd… (2026-12-04T17:00:00Z), go1.26.8".
func (in Info) String() string {
	s := "recpol " + in.Version
	if in.Revision != "" {
		s += " commit " + in.Revision
		if in.Time != "" {
			s += fmt.Sprintf(" (%s)", in.Time)
		}
	}
	return s + ", " + in.Go
}
