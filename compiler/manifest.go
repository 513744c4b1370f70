package compiler

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/recpol/recpol/internal/ordered"
	"github.com/recpol/recpol/internal/readlimit"
	"github.com/recpol/recpol/table"
)

// A manifest lets a compile of an unchanged directory skip everything
// else: it records, for the last compile of a directory that succeeded,
// every policy file's identity (path, size, modification and change time,
// device and inode) and content hash, with the table it compiled to (in the compact
// form of tablecodec.go) and its warnings. When every file still has the
// identity recorded, the table is decoded from the manifest and nothing is
// parsed or evaluated.
//
// A file whose identity differs, or which is in doubt, is read and hashed:
// in doubt is a file modified less than doubtWindow before the manifest
// was written or before now, since a file rewritten within the clock's or
// the file system's granularity can keep its size and time. When every
// hash matches, the manifest still holds and is written back with the
// new identities. Otherwise the directory is compiled as usual, with the
// per-group cache, and a new manifest is written when the compile
// succeeds.
//
// A manifest is keyed by the directory (as given, and absolute), and
// salted with the compile cache's salt and the identity of the compiler's
// own executable, so that another build of recpol never trusts it.

// doubtWindow is how close to the manifest's writing, or to now, a file's
// modification time makes it in doubt.
const doubtWindow = 2 * time.Second

// castagnoli checks a manifest's integrity (CRC-32C, which the CPU
// computes): a manifest is a cache, trusted only as far as its salt and
// the files' hashes say, so the check is against torn or damaged files.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// manifestMagic starts every manifest.
const manifestMagic = "recpol manifest 2\n"

// fileIdentity is what a stat says about a file.
type fileIdentity struct {
	Name    string
	Size    int64
	MtimeNS int64
	CtimeNS int64
	Dev     uint64
	Ino     uint64
}

func identityOf(e dirEntry) fileIdentity {
	dev, ino, ctime := statIdentity(e.info)
	return fileIdentity{Name: e.path, Size: e.info.Size(), MtimeNS: e.info.ModTime().UnixNano(),
		CtimeNS: ctime, Dev: dev, Ino: ino}
}

// manifest is the decoded content of a manifest file.
type manifest struct {
	WrittenNS   int64
	Files       []fileIdentity
	Sums        [][32]byte
	Diagnostics Diagnostics
	Version     string
	Accounts    []byte // encodeAccounts
}

// manifestSalt covers what a manifest's table depends on besides the
// files: the cache salt (format, schema, CUE version), the table format
// and the executable that compiled it (its path, size and time, and its
// build's version control stamp), since the table is the output of this
// build's resolver.
var manifestSalt = sync.OnceValue(func() []byte {
	h := sha256.New()
	h.Write(cacheSalt())
	h.Write([]byte("\ntable format " + strconv.Itoa(table.FormatVersion)))
	h.Write([]byte("\ntable codec " + strconv.Itoa(codecVersion)))
	if exe, err := os.Executable(); err == nil {
		if info, err := os.Stat(exe); err == nil {
			h.Write([]byte("\n" + exe + " " + strconv.FormatInt(info.Size(), 10) + " " +
				strconv.FormatInt(info.ModTime().UnixNano(), 10)))
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		h.Write([]byte("\n" + bi.Main.Path + " " + bi.Main.Version + " " + bi.Main.Sum))
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				h.Write([]byte("\n" + s.Key + "=" + s.Value))
			}
		}
	}
	return h.Sum(nil)
})

// manifestPath is where the manifest of dir is kept.
func manifestPath(cacheDir, dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(dir + "\x00" + abs))
	return filepath.Join(cacheDir, "manifests", hex.EncodeToString(sum[:16]))
}

// currentManifest returns the manifest of dir when the files entries
// lists are those it records. It reports false on any doubt: a missing,
// foreign or corrupt manifest, a file added, removed or changed. Files it
// had to hash to be sure (their times too close to the manifest's) are
// recorded again, so that the next check is a stat, once they are old
// enough for that (worthRecording).
//
// With withTable, the manifest's table (Accounts) is read and checked too,
// and a corrupt table is a miss; without it only the manifest's header is
// read (readManifestHeader), and m.Accounts is nil.
func currentManifest(cacheDir, dir string, entries []dirEntry, withTable bool) (*manifest, bool) {
	return currentManifestAt(cacheDir, dir, entries, withTable, time.Now().UnixNano())
}

// currentManifestAt is currentManifest checking at the time now.
func currentManifestAt(cacheDir, dir string, entries []dirEntry, withTable bool, now int64) (*manifest, bool) {
	p := manifestPath(cacheDir, dir)
	read := readManifestHeader
	if withTable {
		read = readManifest
	}
	m, ok := read(p)
	if !ok {
		return nil, false
	}
	ids, hashed, ok := checkFiles(m, entries, now)
	if !ok {
		return nil, false
	}
	if hashed > 0 && worthRecording(m, ids, now) {
		full := m
		if !withTable {
			// Recording the new identities needs the table: read it now,
			// and only if the manifest is still the one checked.
			if full, ok = readManifest(p); !ok || !sameHeader(full, m) {
				return m, true
			}
		}
		writeManifest(cacheDir, dir, ids, full.Sums, full.Diagnostics, full.Version, [][]byte{full.Accounts})
	}
	return m, true
}

// sameHeader reports whether two reads of a manifest record the same
// compile.
func sameHeader(a, b *manifest) bool {
	return a.WrittenNS == b.WrittenNS && a.Version == b.Version &&
		slices.Equal(a.Files, b.Files) && slices.Equal(a.Sums, b.Sums)
}

// warmCompile returns the result the manifest of dir holds when it is
// current (currentManifest).
func warmCompile(cacheDir, dir string, entries []dirEntry) (*Result, bool) {
	m, ok := currentManifest(cacheDir, dir, entries, true)
	if !ok {
		return nil, false
	}
	t, err := tableOf(m.Version, m.Accounts)
	if err != nil {
		return nil, false
	}
	res := &Result{Table: t, Diagnostics: m.Diagnostics, enc: m.Accounts, settings: &settingIndex{read: func() []File {
		files, _ := ReadDir(dir)
		return files
	}}}
	return res, true
}

// Unchanged reports the version and diagnostics of the table that the
// manifest in cacheDir records for dir, when it is current
// (currentManifest), without reading or decoding the table: what a caller
// needs to know that an output it wrote from that table is current. It
// reads only the manifest's header (readManifestHeader): decoding a
// thousand accounts' table, and then reading the megabytes it takes, were
// most of a warm compile.
func Unchanged(cacheDir, dir string) (version string, diags Diagnostics, ok bool) {
	if cacheDir == "" {
		return "", nil, false
	}
	entries, err := listDir(dir)
	if err != nil {
		return "", nil, false
	}
	m, ok := currentManifest(cacheDir, dir, entries, false)
	if !ok {
		return "", nil, false
	}
	return m.Version, m.Diagnostics, true
}

// checkFiles compares the files entries lists with those of the manifest
// at time now. It returns the files' identities and how many it had to
// hash, and false when a file is not the one compiled.
func checkFiles(m *manifest, entries []dirEntry, now int64) (ids []fileIdentity, hashed int, ok bool) {
	if len(m.Files) != len(entries) {
		return nil, 0, false
	}
	ids = make([]fileIdentity, len(entries))
	for i, e := range entries {
		ids[i] = identityOf(e)
		id, old := ids[i], m.Files[i]
		if id.Name != old.Name {
			return nil, 0, false
		}
		if id == old && !inDoubt(id, m.WrittenNS, now) {
			continue
		}
		data, err := readlimit.File(e.path, MaxFileBytes)
		if err != nil || int64(len(data)) != id.Size || fileSum(File{Name: e.path, Data: data}) != m.Sums[i] {
			return nil, 0, false
		}
		hashed++
	}
	return ids, hashed, true
}

// A manifest file is a header and the table:
//
//	magic, salt (32 bytes), header length (4 bytes, big-endian)
//	header: written time, the files' identities and sums, the diagnostics
//	        (JSON), the table's version, the table's length and CRC-32C
//	CRC-32C of all of the above (4 bytes)
//	the table (encodeAccounts)
//
// so that a reader that needs only the header (Unchanged) reads a few
// kilobytes and still checks what it reads, and a reader of the table
// checks it against the CRC the checked header records.

// maxManifestHeader bounds the header a reader accepts, against a corrupt
// length.
const maxManifestHeader = 256 << 20

// manifestPrefix is the length of magic, salt and header length.
const manifestPrefix = len(manifestMagic) + sha256.Size + 4

// inDoubt reports whether the file id, checked at now against a manifest
// written at written, must be hashed whatever its identity says.
func inDoubt(id fileIdentity, written, now int64) bool {
	newest := max(id.MtimeNS, id.CtimeNS)
	return newest >= written-int64(doubtWindow) || newest >= now-int64(doubtWindow) ||
		(id.Dev == 0 && id.Ino == 0)
}

// worthRecording reports whether writing the manifest again, at now, with
// the identities ids would spare the next check a hash: whether a file
// hashed now would be trusted by its identity then. A file changed less
// than doubtWindow ago stays in doubt whatever the manifest records, and
// writing megabytes of table again for it would buy nothing.
func worthRecording(m *manifest, ids []fileIdentity, now int64) bool {
	for i, id := range ids {
		if (id != m.Files[i] || inDoubt(id, m.WrittenNS, now)) && !inDoubt(id, now, now) {
			return true
		}
	}
	return false
}

// writeManifest records a successful compile of dir. ids are the files'
// identities taken before they were read, sums the hashes of what was
// compiled; the concatenation of enc is the table's accounts encoded
// (encodeAccounts), written as they are, never joined in memory.
func writeManifest(cacheDir, dir string, ids []fileIdentity, sums [][32]byte, diags Diagnostics, version string, enc [][]byte) {
	encLen, encSum := 0, uint32(0)
	for _, p := range enc {
		encLen += len(p)
		encSum = crc32.Update(encSum, castagnoli, p)
	}
	b, ok := manifestHeader(ids, sums, diags, version, encLen, encSum)
	if !ok {
		return
	}
	// The table follows the header as it is: not copied into b, which
	// would be megabytes more for the collector at every reload.
	writeFileAtomic(manifestPath(cacheDir, dir), append([][]byte{b}, enc...)...)
}

// manifestHeader returns a manifest's header, prefix and CRC included, for
// a table encoding of encLen bytes whose CRC is encSum.
func manifestHeader(ids []fileIdentity, sums [][32]byte, diags Diagnostics, version string, encLen int, encSum uint32) ([]byte, bool) {
	dj, err := json.Marshal(diags)
	if err != nil {
		return nil, false
	}
	size := manifestPrefix + len(dj) + len(version) + 64
	for _, id := range ids {
		size += len(id.Name) + 6*binary.MaxVarintLen64 + 32
	}
	b := make([]byte, manifestPrefix, size)
	copy(b, manifestMagic)
	copy(b[len(manifestMagic):], manifestSalt())
	b = binary.AppendVarint(b, time.Now().UnixNano())
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for i, id := range ids {
		b = appendBytes(b, []byte(id.Name))
		b = binary.AppendVarint(b, id.Size)
		b = binary.AppendVarint(b, id.MtimeNS)
		b = binary.AppendVarint(b, id.CtimeNS)
		b = binary.AppendUvarint(b, id.Dev)
		b = binary.AppendUvarint(b, id.Ino)
		b = append(b, sums[i][:]...)
	}
	b = appendBytes(b, dj)
	b = appendBytes(b, []byte(version))
	b = binary.AppendUvarint(b, uint64(encLen))
	b = binary.BigEndian.AppendUint32(b, encSum)
	binary.BigEndian.PutUint32(b[manifestPrefix-4:], uint32(len(b)-manifestPrefix))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return b, true
}

// writeManifestOf is writeManifest of table t, for a compile that keeps
// nothing for another (Options.Compile): each account is encoded and
// written in turn, and forgotten, into a temporary file that then follows
// the header, whose table length and CRC are known only at the end. The
// encoded table (tens of megabytes for thousands of accounts) is never
// held in memory beside the table itself.
func writeManifestOf(cacheDir, dir string, ids []fileIdentity, sums [][32]byte, diags Diagnostics, t *table.Table) {
	path := manifestPath(cacheDir, dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	body, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return
	}
	defer os.Remove(body.Name())
	defer body.Close()
	sw := &sumWriter{w: bufio.NewWriterSize(body, 64<<10)}
	accounts := t.AccountIDs()
	var n [binary.MaxVarintLen64]byte
	sw.write(n[:binary.PutUvarint(n[:], uint64(len(accounts)))])
	// Each account is encoded into a buffer that goes back to free once
	// written: the accounts' encodings are not allocated each anew.
	workers := goruntime.GOMAXPROCS(0)
	free := make(chan []byte, 5*workers)
	ordered.Encode(len(accounts), workers, func() func(int) []byte {
		e := newTabEnc()
		return func(i int) []byte {
			var b []byte
			select {
			case b = <-free:
			default:
			}
			return e.appendAccount(b, t.Accounts[accounts[i]])
		}
	}, func(c []byte) {
		sw.write(n[:binary.PutUvarint(n[:], uint64(len(c)))])
		sw.write(c)
		select {
		case free <- c[:0]:
		default:
		}
	})
	if sw.err != nil || sw.w.Flush() != nil {
		return
	}
	b, ok := manifestHeader(ids, sums, diags, t.Version, sw.n, sw.sum)
	if !ok {
		return
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return
	}
	writeFileAtomicFrom(path, body, b)
}

// sumWriter writes to w, counting the bytes and their CRC (Castagnoli).
type sumWriter struct {
	w   *bufio.Writer
	n   int
	sum uint32
	err error
}

func (s *sumWriter) write(p []byte) {
	if s.err != nil {
		return
	}
	_, s.err = s.w.Write(p)
	s.n += len(p)
	s.sum = crc32.Update(s.sum, castagnoli, p)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// headerLen returns the length of the manifest's header, with its prefix
// and CRC, from the prefix b, and false when b is not the start of a
// manifest of this build.
func headerLen(b []byte) (int, bool) {
	if len(b) < manifestPrefix || string(b[:len(manifestMagic)]) != manifestMagic ||
		!bytes.Equal(b[len(manifestMagic):manifestPrefix-4], manifestSalt()) {
		return 0, false
	}
	n := binary.BigEndian.Uint32(b[manifestPrefix-4:])
	if n > maxManifestHeader {
		return 0, false
	}
	return manifestPrefix + int(n) + 4, true
}

// parseHeader decodes and checks a manifest's header (prefix, header and
// CRC, as headerLen measures it) and returns the table's length and CRC.
func parseHeader(b []byte) (m *manifest, tableLen int, tableSum uint32, ok bool) {
	if len(b) < manifestPrefix+4 {
		return nil, 0, 0, false
	}
	body, trailer := b[:len(b)-4], b[len(b)-4:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(trailer) {
		return nil, 0, 0, false
	}
	d := &tabDec{b: body[manifestPrefix:]}
	m = &manifest{}
	m.WrittenNS = int64(d.int())
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		id := fileIdentity{Name: d.str(), Size: int64(d.int()), MtimeNS: int64(d.int()), CtimeNS: int64(d.int()), Dev: d.uint(), Ino: d.uint()}
		var s [32]byte
		if len(d.b) < len(s) {
			d.fail()
			break
		}
		copy(s[:], d.b)
		d.b = d.b[len(s):]
		m.Files = append(m.Files, id)
		m.Sums = append(m.Sums, s)
	}
	dj := d.str()
	m.Version = d.str()
	tl := d.uint()
	if d.err != nil || len(d.b) != 4 || tl > math.MaxInt32 {
		return nil, 0, 0, false
	}
	if err := json.Unmarshal([]byte(dj), &m.Diagnostics); err != nil || m.Diagnostics.HasErrors() {
		return nil, 0, 0, false
	}
	return m, int(tl), binary.BigEndian.Uint32(d.b), true
}

// readManifest reads and verifies a whole manifest file, its table too.
func readManifest(path string) (*manifest, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	hl, ok := headerLen(b)
	if !ok || hl > len(b) {
		return nil, false
	}
	m, tl, sum, ok := parseHeader(b[:hl])
	if !ok || len(b)-hl != tl || crc32.Checksum(b[hl:], castagnoli) != sum {
		return nil, false
	}
	m.Accounts = b[hl:]
	return m, true
}

// readManifestHeader reads and verifies only the header of a manifest
// file: a few kilobytes, where the table is megabytes. The manifest's
// Accounts are nil.
func readManifestHeader(path string) (*manifest, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b := make([]byte, manifestPrefix, 4<<10)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, false
	}
	hl, ok := headerLen(b)
	if !ok {
		return nil, false
	}
	b = slices.Grow(b, hl-len(b))[:hl]
	if _, err := io.ReadFull(f, b[manifestPrefix:]); err != nil {
		return nil, false
	}
	m, _, _, ok := parseHeader(b[:hl])
	return m, ok
}

// writeFileAtomic writes a file, the concatenation of parts, through a
// temporary file and a rename, so that a reader never sees half of it;
// failures only cost a later compile and are ignored.
func writeFileAtomic(path string, parts ...[]byte) {
	writeFileAtomicFrom(path, nil, parts...)
}

// writeFileAtomicFrom is writeFileAtomic of parts followed by what rest
// reads (nil: nothing).
func writeFileAtomicFrom(path string, rest io.Reader, parts ...[]byte) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	// Buffered: the parts of a manifest are two per account.
	w := bufio.NewWriterSize(f, 64<<10)
	var werr error
	for _, b := range parts {
		if _, werr = w.Write(b); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = w.Flush()
	}
	if werr == nil && rest != nil {
		_, werr = io.Copy(f, rest)
	}
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
	}
}
