package compiler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	recpolcue "github.com/recpol/recpol/cue"
)

// cacheFormat changes whenever the cached shape (rawPolicy, the manifest)
// or the wording of the cached diagnostics changes, so that entries
// written by another release are never trusted.
const cacheFormat = "recpol compile cache 6"

// cacheSalt covers what an entry's meaning depends on besides the files:
// the cache format, the schema and the CUE evaluator's version.
var cacheSalt = sync.OnceValue(func() []byte {
	h := sha256.New()
	h.Write([]byte(cacheFormat + "\n"))
	h.Write(recpolcue.Schema())
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "cuelang.org/go" {
				h.Write([]byte("\n" + d.Path + " " + d.Version + " " + d.Sum))
			}
		}
	}
	return h.Sum(nil)
})

// cacheKey hashes a group's inputs: the salt, then every file's sum
// (fileSum: its name and content), in order. The sums are those the
// compile took anyway, so that a reload does not hash the shared files
// again for each of a thousand groups.
func cacheKey(sums [][32]byte) string {
	h := sha256.New()
	h.Write(cacheSalt())
	for _, s := range sums {
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cacheEntry is one cached group: its evaluated policy and the warnings it
// had. Groups with errors are never cached.
type cacheEntry struct {
	Format      string      `json:"format"`
	Key         string      `json:"key"`
	Policy      rawPolicy   `json:"policy"`
	Diagnostics Diagnostics `json:"diagnostics"`
}

// readCache returns the entry for key. A missing, unreadable, corrupt or
// foreign entry is a miss: it is never trusted.
func readCache(dir, key string) (*cacheEntry, bool) {
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e cacheEntry
	if err := dec.Decode(&e); err != nil || e.Format != cacheFormat || e.Key != key || dec.More() {
		return nil, false
	}
	return &e, true
}

// writeCache stores a group's evaluated policy. It writes a temporary
// file and renames it, so a reader never sees half an entry; failures
// only cost a later re-evaluation and are ignored.
func writeCache(dir, key string, policy rawPolicy, diags Diagnostics) {
	b, err := json.Marshal(cacheEntry{Format: cacheFormat, Key: key, Policy: policy, Diagnostics: diags})
	if err != nil {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-"+key[:16]+"-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), filepath.Join(dir, key+".json")) != nil {
		os.Remove(f.Name())
	}
}

// DefaultCacheDir is where the CLI caches evaluated account groups: the
// user's cache directory (XDG_CACHE_HOME on Linux) under recpol/compile.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "recpol", "compile"), nil
}

// fileEntry caches what inspecting a file that parsed cleanly found, so
// that a later process need not parse an unchanged file to partition the
// policy.
type fileEntry struct {
	Format   string   `json:"format"`
	Sum      string   `json:"sum"`
	Accounts []string `json:"accounts"`
	Shared   bool     `json:"shared"`
	Whole    string   `json:"whole"`
}

func fileEntryPath(dir string, sum [32]byte) string {
	return filepath.Join(dir, "files", hex.EncodeToString(sum[:])+".json")
}

// readFileInfo returns the cached inspection of a file, by its sum.
func readFileInfo(dir string, sum [32]byte) (fileInfo, bool) {
	b, err := os.ReadFile(fileEntryPath(dir, sum))
	if err != nil {
		return fileInfo{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e fileEntry
	if err := dec.Decode(&e); err != nil || e.Format != cacheFormat || e.Sum != hex.EncodeToString(sum[:]) {
		return fileInfo{}, false
	}
	for _, a := range e.Accounts {
		if !idPattern().MatchString(a) {
			return fileInfo{}, false
		}
	}
	return fileInfo{accounts: e.Accounts, shared: e.Shared, whole: e.Whole}, true
}

// writeFileInfo caches the inspection of a file that parsed cleanly.
func writeFileInfo(dir string, sum [32]byte, info fileInfo) {
	b, err := json.Marshal(fileEntry{Format: cacheFormat, Sum: hex.EncodeToString(sum[:]),
		Accounts: info.accounts, Shared: info.shared, Whole: info.whole})
	if err != nil {
		return
	}
	p := fileEntryPath(dir, sum)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), p) != nil {
		os.Remove(f.Name())
	}
}
