package table

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/recpol/recpol/internal/ordered"
)

// The table's JSON is canonical: UTF-8, object keys sorted bytewise, no
// insignificant whitespace, one trailing newline. The writer below emits
// keys in sorted order by construction; TestCanonicalKeysSorted checks it.

// WriteJSON writes the table's canonical JSON.
func (t *Table) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	e := newEnc()
	e.raw(`{"accounts":{`)
	if _, err := bw.Write(e.b); err != nil {
		return err
	}
	// The accounts are encoded in parallel, a few ahead of the one
	// written; their buffers go back to free once written.
	workers := min(runtime.GOMAXPROCS(0), 1+len(t.accountIDs)/digestsPerWorker)
	free := make(chan []byte, 4*workers+workers)
	var werr error
	ordered.Encode(len(t.accountIDs), workers, func() func(int) []byte {
		e := newEnc()
		return func(i int) []byte {
			select {
			case e.b = <-free:
			default:
				e.b = make([]byte, 0, 64<<10)
			}
			if i > 0 {
				e.raw(",")
			}
			id := t.accountIDs[i]
			e.str(id)
			e.raw(":")
			e.account(t.Accounts[id])
			return e.b
		}
	}, func(b []byte) {
		if werr == nil {
			_, werr = bw.Write(b)
		}
		select {
		case free <- b[:0]:
		default:
		}
	})
	if werr != nil {
		return werr
	}
	e.b = e.b[:0]
	e.raw(`},"format_version":`)
	e.int(FormatVersion)
	e.raw(`,"version":`)
	e.str(t.Version)
	e.raw("}\n")
	if _, err := bw.Write(e.b); err != nil {
		return err
	}
	return bw.Flush()
}

// MarshalJSON returns the table's canonical JSON (with its trailing
// newline).
func (t *Table) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	if err := t.WriteJSON(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// AccountJSON returns the canonical JSON of one account.
func AccountJSON(a *Account) []byte {
	e := newEnc()
	e.account(a)
	return e.b
}

// computeVersion hashes what the table means: the format version, the
// built-in defaults (their digest) and every account's canonical JSON, in
// account order. The same policy split into other files, reordered or
// reformatted yields the same version.
func (t *Table) computeVersion(defaults DefaultsDigest) (string, error) {
	if defaults == "" {
		return "", fmt.Errorf("no digest of the built-in defaults")
	}
	h := sha256.New()
	fmt.Fprintf(h, "recpol table format %d\nbuiltin %s\n", FormatVersion, defaults)
	var zero [32]byte
	var todo []*Account
	seen := map[*Account]bool{}
	for _, id := range t.accountIDs {
		if a := t.Accounts[id]; a.digest == zero && !seen[a] {
			seen[a] = true
			todo = append(todo, a)
		}
	}
	digestAccounts(todo)
	for _, id := range t.accountIDs {
		fmt.Fprintf(h, "account %s %x\n", id, t.Accounts[id].digest)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// digestAccounts sets the digest of each account (each once in accounts),
// encoding them in parallel when there are many: the encoding of a
// thousand accounts' canonical JSON was most of a table's construction,
// on one core.
func digestAccounts(accounts []*Account) {
	workers := min(runtime.GOMAXPROCS(0), 1+len(accounts)/digestsPerWorker)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newEnc()
			for i := int(next.Add(1) - 1); i < len(accounts); i = int(next.Add(1) - 1) {
				e.b = e.b[:0]
				e.account(accounts[i])
				accounts[i].digest = sha256.Sum256(e.b)
			}
		}()
	}
	wg.Wait()
}

// digestsPerWorker is how many accounts at least each worker of
// digestAccounts encodes.
const digestsPerWorker = 16

// enc writes canonical JSON. Settings and provenance are interned, so
// their encodings are memoized by pointer.
type enc struct {
	b         []byte
	settings_ map[*Settings][]byte
	// provs are where the provenances of the account being encoded
	// were encoded in b, by pointer: the memo holds no copies, and is
	// emptied at each account (account).
	provs map[provKey]span
}

// span is where something was encoded in enc.b.
type span struct{ start, end int }

type provKey struct {
	p       *Provenance
	enabled bool
}

func newEnc() *enc {
	return &enc{settings_: map[*Settings][]byte{}, provs: map[provKey]span{}}
}

func (e *enc) raw(s string) { e.b = append(e.b, s...) }
func (e *enc) int(i int)    { e.b = strconv.AppendInt(e.b, int64(i), 10) }
func (e *enc) bool(v bool)  { e.b = strconv.AppendBool(e.b, v) }

// str writes a JSON string. Only what JSON requires is escaped (no HTML
// escaping), so the output is stable and readable.
func (e *enc) str(s string) {
	const hexd = "0123456789abcdef"
	e.b = append(e.b, '"')
	// Most strings (ids, provenances, settings) need no escaping: they
	// are copied whole.
	plain := 0
	for plain < len(s) && s[plain] >= 0x20 && s[plain] < utf8.RuneSelf && s[plain] != '"' && s[plain] != '\\' {
		plain++
	}
	e.b = append(e.b, s[:plain]...)
	for i := plain; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				e.b = append(e.b, '\\', c)
			case c == '\n':
				e.b = append(e.b, '\\', 'n')
			case c == '\r':
				e.b = append(e.b, '\\', 'r')
			case c == '\t':
				e.b = append(e.b, '\\', 't')
			case c < 0x20:
				e.b = append(e.b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			default:
				e.b = append(e.b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.b = append(e.b, `\ufffd`...)
		} else {
			e.b = append(e.b, s[i:i+size]...)
		}
		i += size
	}
	e.b = append(e.b, '"')
}

func (e *enc) account(a *Account) {
	// Provenances are interned per account group, and mostly an
	// endpoint's own: kept from one account to the next, their
	// encodings would only pile up (the JSON of every provenance of
	// the table, megabytes, in each encoder at once), hardly ever met
	// again. Within the account, the memo points into e.b, which
	// holds the account's encoding from here on.
	clear(e.provs)
	e.raw(`{"account":`)
	e.cells(&a.Cells)
	e.raw(`,"callflows":{`)
	for i, cf := range a.Callflows {
		if i > 0 {
			e.raw(",")
		}
		e.str(cf.ID)
		e.raw(`:{"actions":[`)
		for j := range cf.Actions {
			if j > 0 {
				e.raw(",")
			}
			e.action(&cf.Actions[j])
		}
		e.raw(`],"numbers":`)
		e.strs(cf.Numbers)
		e.raw(`,"patterns":`)
		e.strs(cf.Patterns)
		e.raw("}")
	}
	e.raw(`},"devices":{`)
	for i, id := range a.deviceIDs {
		if i > 0 {
			e.raw(",")
		}
		d := a.Devices[id]
		e.str(id)
		e.raw(":")
		e.cellsOpen(&d.Cells)
		e.raw(`,"owner":`)
		e.str(d.Owner)
		e.raw("}")
	}
	e.raw(`},"metaflows":{`)
	// Keys "device:..." sort before "user:...".
	n := 0
	for _, id := range a.deviceIDs {
		if m := a.Devices[id].Metaflows; m != nil {
			e.metaflowsEntry(&n, "device:"+id, m)
		}
	}
	for _, id := range a.userIDs {
		if m := a.Users[id].Metaflows; m != nil {
			e.metaflowsEntry(&n, "user:"+id, m)
		}
	}
	e.raw(`},"users":{`)
	for i, id := range a.userIDs {
		if i > 0 {
			e.raw(",")
		}
		e.str(id)
		e.raw(":")
		e.cellsOpen(&a.Users[id].Cells)
		e.raw("}")
	}
	e.raw("}}")
}

func (e *enc) strs(ss []string) {
	e.raw("[")
	for i, s := range ss {
		if i > 0 {
			e.raw(",")
		}
		e.str(s)
	}
	e.raw("]")
}

// cells writes {"inbound":{...},"outbound":{...}}.
func (e *enc) cells(c *Cells) {
	e.cellsOpen(c)
	e.raw("}")
}

// cellsOpen writes {"inbound":{...},"outbound":{...} without the closing
// brace, so that an endpoint can add its own keys (which sort after).
func (e *enc) cellsOpen(c *Cells) {
	e.raw(`{"inbound":{"offnet":`)
	e.cell(c.Get(Inbound, Offnet))
	e.raw(`,"onnet":`)
	e.cell(c.Get(Inbound, Onnet))
	e.raw(`},"outbound":{"offnet":`)
	e.cell(c.Get(Outbound, Offnet))
	e.raw(`,"onnet":`)
	e.cell(c.Get(Outbound, Onnet))
	e.raw("}")
}

func (e *enc) cell(c *Cell) {
	e.raw(`{"provenance":`)
	e.provenance(c.Provenance, true)
	e.raw(`,"record":`)
	e.bool(c.Record)
	e.raw(`,"settings":`)
	e.settings(c.Settings)
	e.raw("}")
}

func (e *enc) provenance(p *Provenance, withEnabled bool) {
	k := provKey{p, withEnabled}
	if sp, ok := e.provs[k]; ok {
		e.b = append(e.b, e.b[sp.start:sp.end]...)
		return
	}
	start := len(e.b)
	defer func() { e.provs[k] = span{start, len(e.b)} }()
	e.raw("{")
	first := true
	key := func(name string) {
		if !first {
			e.raw(",")
		}
		first = false
		e.str(name)
		e.raw(":")
	}
	enabledDone := !withEnabled
	for _, st := range sortedSettings {
		if !enabledDone && st.Name > EnabledName {
			key(EnabledName)
			e.str(p.Enabled)
			enabledDone = true
		}
		v := st.Provenance(p)
		if st.OmitEmpty && v == "" {
			continue
		}
		key(st.Name)
		e.str(v)
	}
	if !enabledDone {
		key(EnabledName)
		e.str(p.Enabled)
	}
	e.raw("}")
}

func (e *enc) settings(s *Settings) {
	if b, ok := e.settings_[s]; ok {
		e.b = append(e.b, b...)
		return
	}
	start := len(e.b)
	defer func() {
		if e.settings_ != nil {
			e.settings_[s] = append([]byte(nil), e.b[start:]...)
		}
	}()
	e.raw("{")
	first := true
	for _, st := range sortedSettings {
		if st.OmitEmpty && st.IsZero(s) {
			continue
		}
		if !first {
			e.raw(",")
		}
		first = false
		e.str(st.Name)
		e.raw(":")
		switch st.Kind {
		case IntSetting:
			e.int(*st.num(s))
		case BoolSetting:
			e.bool(*st.flag(s))
		default:
			e.str(*st.str(s))
		}
	}
	e.raw("}")
}

func (e *enc) action(a *Action) {
	e.raw(`{"action":`)
	e.str(string(a.Action))
	if a.DTMFLeg != "" {
		e.raw(`,"dtmf_leg":`)
		e.str(string(a.DTMFLeg))
	}
	if a.Label != "" {
		e.raw(`,"label":`)
		e.str(a.Label)
	}
	if a.MediaName != "" {
		e.raw(`,"media_name":`)
		e.str(a.MediaName)
	}
	e.raw(`,"module":`)
	e.str(string(a.Module))
	if a.Origin != "" {
		e.raw(`,"origin":`)
		e.str(a.Origin)
	}
	e.raw(`,"provenance":`)
	e.provenance(a.Provenance, false)
	if a.Scope != "" {
		e.raw(`,"scope":`)
		e.str(string(a.Scope))
	}
	e.raw(`,"settings":`)
	e.settings(a.Settings)
	e.raw(`,"should_follow_transfer":`)
	e.bool(a.FollowTransfer)
	e.raw("}")
}

func (e *enc) metaflowsEntry(n *int, key string, m *Metaflows) {
	if *n > 0 {
		e.raw(",")
	}
	*n++
	e.str(key)
	e.raw(`:{"binding_digit":`)
	e.str(m.BindingDigit)
	e.raw(`,"digit_timeout":`)
	e.int(m.DigitTimeout)
	e.raw(`,"listen_on":`)
	e.str(string(m.ListenOn))
	e.raw(`,"numbers":`)
	e.bindings(m.Numbers)
	e.raw(`,"patterns":`)
	e.bindings(m.Patterns)
	e.raw("}")
}

// bindings writes {"<code>":{"action":ACTION,"from":"<scope>"}} in code
// order.
func (e *enc) bindings(bs []MetaflowBinding) {
	idx := make([]int, len(bs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return bs[idx[i]].Code < bs[idx[j]].Code })
	e.raw("{")
	for i, k := range idx {
		if i > 0 {
			e.raw(",")
		}
		e.str(bs[k].Code)
		e.raw(`:{"action":`)
		e.action(&bs[k].Action)
		e.raw(`,"from":`)
		e.str(bs[k].From)
		e.raw("}")
	}
	e.raw("}")
}
