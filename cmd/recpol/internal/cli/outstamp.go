package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
)

// An output stamp lets `recpol compile -o FILE` skip writing a table that
// FILE already holds: with a cache, each write of FILE records the table's
// version and FILE's identity (size, modification time, inode) in
// <cache>/outputs. A compile whose table has that version, while FILE still
// has that identity, writes nothing: the table is tens of megabytes of JSON
// for a thousand accounts, most of a warm compile's time. Anything that
// touched FILE since (an edit, a copy over it) changes its identity, and
// the table is written again.

// outputStamp is what the stamp records.
type outputStamp struct {
	Version string `json:"version"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	Ino     uint64 `json:"ino"`
}

// stampPath is where the stamp of the output file name is kept, or ""
// without a cache or when name cannot be made absolute.
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
// false when it is not a regular file.
func stampOf(name, version string) (outputStamp, bool) {
	info, err := os.Stat(name)
	if err != nil || !info.Mode().IsRegular() {
		return outputStamp{}, false
	}
	return outputStamp{Version: version, Size: info.Size(), MtimeNS: info.ModTime().UnixNano(), Ino: inodeOf(info)}, true
}

// outputCurrent reports whether name holds the table of version, as the
// stamp at path recorded it.
func outputCurrent(path, name, version string) bool {
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
	now, ok := stampOf(name, version)
	return ok && was == now && now.Ino != 0
}

// writeStamp records that name now holds the table of version. A failure
// costs only a later write of the table.
func writeStamp(path, name, version string) {
	if path == "" {
		return
	}
	st, ok := stampOf(name, version)
	if !ok {
		return
	}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, path)
	}
}
