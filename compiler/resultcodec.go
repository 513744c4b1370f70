package compiler

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/recpol/recpol/table"
)

// resultMagic starts an encoded Result.
const resultMagic = "recpol result 2\n"

// ErrNoLastGood is returned by LastGood when no compile of the directory
// has succeeded with that cache.
var ErrNoLastGood = errors.New("no table of a successful compile in the cache")

// MarshalResult encodes a result for another process of the same build:
// its diagnostics, and its table when it has one (each account in the
// manifest's compact form). The decoded result has no setting positions.
func MarshalResult(r *Result) ([]byte, error) {
	return new(Encoder).Encode(r)
}

// UnmarshalResult decodes what MarshalResult encoded. It refuses bytes
// from another build of recpol, whose table form may differ.
func UnmarshalResult(b []byte) (*Result, error) {
	return new(Decoder).Decode(b)
}

// An Encoder encodes results one after another for a Decoder that decodes
// each of them, in order: a compile worker and its parent. An account
// whose encoding is the one this Encoder sent last is sent as its ID
// alone, so that a reload of a large policy sends, and its Decoder
// decodes, only the accounts that changed. Should the two fall out of
// step (a result lost, a Decoder replaced), Decode fails on the first
// account it was not sent; the worker's parent then starts a new worker,
// whose Encoder sends everything. The zero value is ready for use.
type Encoder struct {
	sent map[string][]byte // by account ID, the chunk sent last
}

// A Decoder decodes the results of an Encoder one after another, keeping
// the accounts of the last table it decoded: an account sent as its ID
// alone is that table's account, shared with it (tables are read-only
// once built). Its zero value is ready for use; it is not safe for
// concurrent use.
type Decoder struct {
	accounts map[string]*table.Account
}

// Encode encodes r after the results encoded before.
func (e *Encoder) Encode(r *Result) ([]byte, error) {
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
	var ids []string
	var chunks [][]byte
	if r.chunks != nil {
		ids, chunks = r.chunks.ids, r.chunks.chunks
	} else {
		enc := r.enc
		if enc == nil {
			enc = encodeAccounts(r.Table)
		}
		var err error
		if ids, chunks, err = splitAccounts(enc); err != nil {
			return nil, fmt.Errorf("encoding a compile result: %w", err)
		}
	}
	next := make(map[string][]byte, len(ids))
	size := len(b) + binary.MaxVarintLen64
	for i, c := range chunks {
		size += 1 + binary.MaxVarintLen64 + max(len(c), len(ids[i]))
	}
	b = slices.Grow(b, size-len(b))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for i, id := range ids {
		c := chunks[i]
		if old, ok := e.sent[id]; ok && bytes.Equal(old, c) {
			b = append(b, entryKept)
			b = appendBytes(b, []byte(id))
		} else {
			b = append(b, entrySent)
			b = appendBytes(b, c)
		}
		next[id] = c
	}
	e.sent = next
	return b, nil
}

// The entries of an encoded result's accounts.
const (
	entryKept byte = iota // the account's ID: the account decoded before
	entrySent             // the account's chunk
)

// Decode decodes a result Encode encoded. A result that fails to decode
// leaves the Decoder as it was.
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
	n := d.count()
	accounts := make([]*table.Account, 0, n)
	next := make(map[string]*table.Account, n)
	for i := 0; i < n && d.err == nil; i++ {
		if len(d.b) == 0 {
			d.fail()
			break
		}
		kind := d.b[0]
		d.b = d.b[1:]
		var a *table.Account
		switch kind {
		case entryKept:
			id := d.raw()
			if a = dc.accounts[string(id)]; a == nil && d.err == nil {
				return nil, fmt.Errorf("decoding a compile result: account %q was not sent before", id)
			}
		case entrySent:
			c := d.raw()
			if d.err != nil {
				break
			}
			var err error
			if a, err = decodeAccount(c); err != nil {
				return nil, fmt.Errorf("decoding a compile result: %w", err)
			}
		default:
			d.fail()
		}
		if d.err == nil {
			accounts = append(accounts, a)
			next[a.ID] = a
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCodec
	}
	if d.err != nil {
		return nil, errors.New("decoding a compile result: truncated table")
	}
	if err := checkOrder(accounts); err != nil {
		return nil, fmt.Errorf("decoding a compile result: %w", err)
	}
	t, err := table.NewVersioned(accounts, version)
	if err != nil {
		return nil, fmt.Errorf("decoding a compile result: %w", err)
	}
	dc.accounts = next
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
