package compiler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/recpol/recpol/table"
)

// resultMagic starts an encoded Result.
const resultMagic = "recpol result 1\n"

// ErrNoLastGood is returned by LastGood when no compile of the directory
// has succeeded with that cache.
var ErrNoLastGood = errors.New("no table of a successful compile in the cache")

// MarshalResult encodes a result for another process of the same build:
// its diagnostics, and its table when it has one (in the manifest's
// compact form). The decoded result has no setting positions.
func MarshalResult(r *Result) ([]byte, error) {
	dj, err := json.Marshal(r.Diagnostics)
	if err != nil {
		return nil, fmt.Errorf("encoding diagnostics: %w", err)
	}
	b := append([]byte(resultMagic), manifestSalt()...)
	b = appendBytes(b, dj)
	if r.Table == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	b = appendBytes(b, []byte(r.Table.Version))
	enc := r.enc
	if enc == nil {
		enc = encodeAccounts(r.Table)
	}
	return appendBytes(b, enc), nil
}

// UnmarshalResult decodes what MarshalResult encoded. It refuses bytes
// from another build of recpol, whose table form may differ.
func UnmarshalResult(b []byte) (*Result, error) {
	return new(Decoder).Decode(b)
}

// A Decoder decodes the results MarshalResult encoded one after another,
// as the parent of a compile worker does: an account whose encoding is the
// same as in the result decoded before is that result's account, shared
// and not decoded again (tables are read-only once built), so that a
// reload of a large policy decodes only the accounts that changed. Its
// zero value is ready for use; it is not safe for concurrent use.
type Decoder struct {
	memo accountMemo
}

// Decode is UnmarshalResult. A result that fails to decode leaves the
// Decoder as it was.
func (dc *Decoder) Decode(b []byte) (*Result, error) {
	if len(b) < len(resultMagic) || string(b[:len(resultMagic)]) != resultMagic {
		return nil, errors.New("decoding a compile result: not an encoded result")
	}
	b = b[len(resultMagic):]
	salt := manifestSalt()
	if len(b) < len(salt) || string(b[:len(salt)]) != string(salt) {
		return nil, errors.New("decoding a compile result: encoded by another build of recpol")
	}
	d := &tabDec{b: b[len(salt):]}
	dj := d.raw()
	if d.err != nil || len(d.b) < 1 {
		return nil, errors.New("decoding a compile result: truncated")
	}
	res := &Result{}
	if err := json.Unmarshal(dj, &res.Diagnostics); err != nil {
		return nil, fmt.Errorf("decoding a compile result's diagnostics: %w", err)
	}
	hasTable := d.b[0] == 1
	d.b = d.b[1:]
	if !hasTable {
		return res, nil
	}
	version := string(d.raw())
	enc := d.raw()
	if d.err != nil {
		return nil, errors.New("decoding a compile result: truncated table")
	}
	accounts, memo, err := decodeAccountsAfter(enc, dc.memo)
	if err != nil {
		return nil, fmt.Errorf("decoding a compile result: %w", err)
	}
	t, err := table.NewVersioned(accounts, version)
	if err != nil {
		return nil, fmt.Errorf("decoding a compile result: %w", err)
	}
	dc.memo = memo
	res.Table = t
	return res, nil
}

// tableOf rebuilds a table from its encoded accounts with the version it
// was encoded with. The encoding is this build's own (the manifest's and
// the result's salt say so) and checked for integrity, so the version is
// not computed again: hashing the accounts was most of a warm compile's
// time. TestTableOfVersion holds the decoded accounts to that version.
func tableOf(version string, enc []byte) (*table.Table, error) {
	accounts, err := decodeAccounts(enc)
	if err != nil {
		return nil, err
	}
	return table.NewVersioned(accounts, version)
}

// LastGood returns the table of the last compile of dir that succeeded
// with cacheDir (the one the manifest keeps), whatever dir's files are
// now, and when that compile was recorded. It is what a runtime falls
// back to when the policy it starts on does not compile.
func LastGood(cacheDir, dir string) (*Result, int64, error) {
	p := manifestPath(cacheDir, dir)
	if _, err := os.Stat(p); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", dir, ErrNoLastGood)
	}
	m, ok := readManifest(p)
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w (the manifest is unreadable or from another build)", dir, ErrNoLastGood)
	}
	t, err := tableOf(m.Version, m.Accounts)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: the manifest's table: %w", dir, err)
	}
	return &Result{Table: t, Diagnostics: m.Diagnostics}, m.WrittenNS, nil
}

// raw reads a length-prefixed byte string without copying it.
func (d *tabDec) raw() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}
