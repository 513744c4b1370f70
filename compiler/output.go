package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
)

// An output stamp lets a compile to a file (`recpol compile -o FILE`)
// skip writing a table that FILE already holds: with a cache, each write
// of FILE records the table's version and FILE's identity (size,
// modification and change time, device and inode) in <cache>/outputs. A
// compile whose table has that version, while FILE still has that
// identity, writes nothing: the table is tens of megabytes of JSON for a
// thousand accounts. Anything that touched FILE since (an edit, a copy
// over it, even one that restores its size and modification time, since
// that sets the change time) changes its identity, and the table is
// written again.

// outputStampFormat changes whenever outputStamp does, so that a stamp of
// another release never matches.
const outputStampFormat = 2

// outputStamp is what a stamp records.
type outputStamp struct {
	Format  int    `json:"format"`
	Version string `json:"version"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
}

// stampPath is where the stamp of the output file name is kept, or ""
// without a cache or when name is stdout or cannot be made absolute.
func stampPath(cacheDir, name string) string {
	if cacheDir == "" || name == "" || name == "-" {
		return ""
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(cacheDir, "outputs", hex.EncodeToString(sum[:16])+".json")
}

// stampOf returns the identity of the regular file name with version, and
// false when it is not a regular file or the file system does not say
// its inode.
func stampOf(name, version string) (outputStamp, bool) {
	info, err := os.Stat(name)
	if err != nil || !info.Mode().IsRegular() {
		return outputStamp{}, false
	}
	dev, ino, ctime := statIdentity(info)
	return outputStamp{Format: outputStampFormat, Version: version, Size: info.Size(),
		MtimeNS: info.ModTime().UnixNano(), CtimeNS: ctime, Dev: dev, Ino: ino}, ino != 0
}

// OutputHolds reports whether the file output holds the table of version,
// as recorded by RecordOutput with cacheDir, untouched since. It is false
// without a cache and for stdout ("" or "-").
func OutputHolds(cacheDir, output, version string) bool {
	path := stampPath(cacheDir, output)
	if path == "" {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var was outputStamp
	if json.Unmarshal(b, &was) != nil {
		return false
	}
	now, ok := stampOf(output, version)
	return ok && was == now
}

// RecordOutput records in cacheDir that the file output now holds the
// table of version (see OutputHolds). A failure costs only a later write
// of the table, and is ignored.
func RecordOutput(cacheDir, output, version string) {
	path := stampPath(cacheDir, output)
	if path == "" {
		return
	}
	st, ok := stampOf(output, version)
	if !ok {
		return
	}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	writeFileAtomic(path, b)
}

// OutputCurrent reports whether a compile of dir to the file output would
// change nothing: the manifest in cacheDir records dir's files as they are
// (Unchanged) and output holds the table that manifest records
// (OutputHolds). It returns that compile's diagnostics (warnings: the
// manifest records only valid policies). This is the whole of a warm
// `recpol compile DIR -o FILE`: it reads the manifest's header, stats the
// files, and reads nothing of the table.
func OutputCurrent(cacheDir, dir, output string) (Diagnostics, bool) {
	if stampPath(cacheDir, output) == "" {
		return nil, false
	}
	v, ds, ok := Unchanged(cacheDir, dir)
	if !ok || !OutputHolds(cacheDir, output, v) {
		return nil, false
	}
	return ds, true
}
