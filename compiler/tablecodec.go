package compiler

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"

	"github.com/recpol/recpol/table"
)

// The manifest (manifest.go) keeps the last table in a compact binary form:
// decoding the table's canonical JSON costs seconds on a large policy,
// this form a few milliseconds per thousand endpoints. Settings and
// provenance are interned per account (a table of distinct values,
// referred to by index), as the compiler interns them.
//
// The form covers every exported field of the table's types;
// TestTableCodecFields fails when one is added, so that the codec is
// extended with it.

// codecVersion numbers the form below; the manifest's salt includes it.
// 2: each account a chunk with its own interned values; 3: its ID first.
const codecVersion = 3

// encodeAccounts encodes the accounts of t, in account order: their
// count, then each account as a length-prefixed chunk that stands alone
// (it carries its own interned values). An account's chunk depends on the
// account only, so a compile that keeps most accounts (the incremental
// compiler reuses those of unchanged files) encodes only the new ones
// (chunkCache), and a compile worker sends its parent only the chunks
// that changed (Encoder): encoding, sending and decoding the whole table
// was most of a hot reload through the worker.
func encodeAccounts(t *table.Table) []byte {
	return encodeAccountsCached(t, nil)
}

// chunkCache maps an account to its encoded chunk.
type chunkCache map[*table.Account][]byte

// encodeAccountsCached is encodeAccounts reusing the chunks of cache, which
// it updates to hold this table's accounts only.
func encodeAccountsCached(t *table.Table, cache chunkCache) []byte {
	return accountChunksCached(t, cache).join()
}

// accountChunks are a table's accounts encoded one by one, in ID order:
// what encodeAccounts joins, kept apart so that a compile worker answers
// from the chunks (Encoder) and joins them only for the manifest, after
// its answer.
type accountChunks struct {
	ids    []string
	chunks [][]byte
}

// accountChunksCached encodes t's accounts, reusing the chunks of cache,
// which it updates to hold this table's accounts only.
func accountChunksCached(t *table.Table, cache chunkCache) accountChunks {
	ids := sortedKeys(t.Accounts)
	chunks := make([][]byte, len(ids))
	keep := make(map[*table.Account]bool, len(ids))
	for i, id := range ids {
		a := t.Accounts[id]
		c, ok := cache[a]
		if !ok {
			c = encodeAccount(a)
			if cache != nil {
				cache[a] = c
			}
		}
		keep[a] = true
		chunks[i] = c
	}
	for a := range cache {
		if !keep[a] {
			delete(cache, a)
		}
	}
	return accountChunks{ids: ids, chunks: chunks}
}

// join returns the accounts' encoding (encodeAccounts).
func (ac accountChunks) join() []byte {
	size := binary.MaxVarintLen64
	for _, c := range ac.chunks {
		size += binary.MaxVarintLen64 + len(c)
	}
	enc := make([]byte, 0, size)
	enc = binary.AppendUvarint(enc, uint64(len(ac.chunks)))
	for _, c := range ac.chunks {
		enc = appendBytes(enc, c)
	}
	return enc
}

// parts returns the accounts' encoding (join) in parts, the chunks
// themselves and their counts and lengths between them, for a writer
// that need not have it in one piece (writeManifest).
func (ac accountChunks) parts() [][]byte {
	lens := binary.AppendUvarint(make([]byte, 0, (len(ac.chunks)+1)*3), uint64(len(ac.chunks)))
	ends := []int{len(lens)}
	for _, c := range ac.chunks {
		lens = binary.AppendUvarint(lens, uint64(len(c)))
		ends = append(ends, len(lens))
	}
	out := make([][]byte, 0, 2*len(ac.chunks)+1)
	out = append(out, lens[:ends[0]])
	for i, c := range ac.chunks {
		out = append(out, lens[ends[i]:ends[i+1]], c)
	}
	return out
}

// encodeAccount encodes one account: its ID, its interned values, so
// that the decoder has them when the account refers to them, then the
// account. The account is encoded first, in a pooled encoder, to learn
// its interned values; the header is written after, and both are copied
// into one chunk of their exact length.
func encodeAccount(a *table.Account) []byte {
	enc := tabEncPool.Get().(*tabEnc)
	defer tabEncPool.Put(enc)
	return enc.encodeAccount(a)
}

// encodeAccount is encodeAccount with the encoder e, new or reset, which
// it leaves reset.
func (e *tabEnc) encodeAccount(a *table.Account) []byte {
	defer e.reset()
	hdr, body := e.encode(a)
	out := make([]byte, 0, len(hdr)+len(body))
	return append(append(out, hdr...), body...)
}

// appendAccount appends the encoding of a (encodeAccount's) to dst, with
// the encoder e, new or reset, which it leaves reset.
func (e *tabEnc) appendAccount(dst []byte, a *table.Account) []byte {
	defer e.reset()
	hdr, body := e.encode(a)
	return append(append(dst, hdr...), body...)
}

// encode encodes a into e's buffers: its header and its body, valid until
// e is reset.
func (e *tabEnc) encode(a *table.Account) (hdr, body []byte) {
	e.account(a)
	h := tabEnc{b: e.hdr[:0]}
	h.str(a.ID) // first, for chunkID
	h.uint(uint64(len(e.settings.list)))
	for i := range e.settings.list {
		s := &e.settings.list[i]
		for _, st := range table.SettingList {
			n, b, str := st.ValueKind(s)
			switch st.Kind {
			case table.IntSetting:
				h.int(n)
			case table.BoolSetting:
				h.bool(b)
			default:
				h.str(str)
			}
		}
	}
	h.uint(uint64(len(e.provs.list)))
	for i := range e.provs.list {
		p := &e.provs.list[i]
		h.str(p.Enabled)
		for _, st := range table.SettingList {
			h.str(st.Provenance(p))
		}
	}
	e.hdr = h.b
	return e.hdr, e.b
}

// tabEncPool holds the encoders of encodeAccount, whose buffers and maps
// each account reuses.
var tabEncPool = sync.Pool{New: func() any { return newTabEnc() }}

// newTabEnc returns an encoder of accounts.
func newTabEnc() *tabEnc {
	return &tabEnc{}
}

// reset empties an encoder for the next account, keeping its buffers
// and maps.
func (e *tabEnc) reset() {
	e.b, e.hdr = e.b[:0], e.hdr[:0]
	e.settings.reset()
	e.provs.reset()
}

// indexOf numbers the distinct values an account refers to, in the order
// first referred to: the account's chunk lists them once and refers to
// them by index.
type indexOf[T comparable] struct {
	byValue map[T]int
	// byPtr finds a value's index by pointer, without hashing the value;
	// equal values behind other pointers (another interner's) still
	// share the value's index.
	byPtr map[*T]int
	list  []T
}

// index returns p's index, numbering its value if it is new.
func (x *indexOf[T]) index(p *T) int {
	if i, ok := x.byPtr[p]; ok {
		return i
	}
	i, ok := x.byValue[*p]
	if !ok {
		if x.byValue == nil {
			x.byValue = map[T]int{}
		}
		i = len(x.list)
		x.byValue[*p] = i
		x.list = append(x.list, *p)
	}
	if x.byPtr == nil {
		x.byPtr = map[*T]int{}
	}
	x.byPtr[p] = i
	return i
}

// reset empties the index, keeping its maps and list for the next account.
func (x *indexOf[T]) reset() {
	clear(x.byValue)
	clear(x.byPtr)
	clear(x.list) // let go of the values' strings
	x.list = x.list[:0]
}

type tabEnc struct {
	b        []byte
	settings indexOf[table.Settings]
	provs    indexOf[table.Provenance]
	// hdr is encodeAccount's scratch for a pooled encoder's header.
	hdr []byte
}

func (e *tabEnc) uint(n uint64) { e.b = binary.AppendUvarint(e.b, n) }
func (e *tabEnc) int(n int)     { e.b = binary.AppendVarint(e.b, int64(n)) }
func (e *tabEnc) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *tabEnc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// strs keeps a nil list apart from an empty one.
func (e *tabEnc) strs(ss []string) {
	if ss == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(ss)) + 1)
	for _, s := range ss {
		e.str(s)
	}
}

// refs writes the index+1 of an interned value, 0 for nil.
func (e *tabEnc) refs(s *table.Settings, p *table.Provenance) {
	if s == nil {
		e.uint(0)
	} else {
		e.uint(uint64(e.settings.index(s)) + 1)
	}
	if p == nil {
		e.uint(0)
	} else {
		e.uint(uint64(e.provs.index(p)) + 1)
	}
}

func (e *tabEnc) cells(c *table.Cells) {
	for d := range c {
		for n := range c[d] {
			e.bool(c[d][n].Record)
			e.refs(c[d][n].Settings, c[d][n].Provenance)
		}
	}
}

func (e *tabEnc) account(a *table.Account) {
	e.str(a.ID)
	e.cells(&a.Cells)
	for _, m := range []map[string]*table.Endpoint{a.Users, a.Devices} {
		if m == nil {
			e.uint(0)
			continue
		}
		e.uint(uint64(len(m)) + 1)
		for _, k := range sortedKeys(m) {
			e.str(k)
			e.endpoint(m[k])
		}
	}
	if a.Callflows == nil {
		e.uint(0)
	} else {
		e.uint(uint64(len(a.Callflows)) + 1)
		for _, cf := range a.Callflows {
			e.str(cf.ID)
			e.strs(cf.Numbers)
			e.strs(cf.Patterns)
			e.actions(cf.Actions)
		}
	}
}

func (e *tabEnc) endpoint(ep *table.Endpoint) {
	e.uint(uint64(ep.Kind))
	e.str(ep.ID)
	e.str(ep.Owner)
	e.cells(&ep.Cells)
	m := ep.Metaflows
	if m == nil {
		e.bool(false)
		return
	}
	e.bool(true)
	e.str(m.BindingDigit)
	e.int(m.DigitTimeout)
	e.str(string(m.ListenOn))
	e.bindings(m.Numbers)
	e.bindings(m.Patterns)
}

func (e *tabEnc) bindings(bs []table.MetaflowBinding) {
	if bs == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(bs)) + 1)
	for i := range bs {
		e.str(bs[i].Code)
		e.str(bs[i].From)
		e.action(&bs[i].Action)
	}
}

func (e *tabEnc) actions(as []table.Action) {
	if as == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(as)) + 1)
	for i := range as {
		e.action(&as[i])
	}
}

func (e *tabEnc) action(a *table.Action) {
	e.str(string(a.Module))
	e.str(string(a.Action))
	e.str(a.Label)
	e.str(a.MediaName)
	e.bool(a.FollowTransfer)
	e.str(a.Origin)
	e.str(string(a.DTMFLeg))
	e.str(string(a.Scope))
	e.refs(a.Settings, a.Provenance)
}

var errCodec = errors.New("corrupt table encoding")

// decodeAccounts decodes what encodeAccounts wrote. Any inconsistency is
// an error: the caller then compiles instead.
func decodeAccounts(b []byte) ([]*table.Account, error) {
	d := &tabDec{b: b}
	n := d.count()
	accounts := make([]*table.Account, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		c := d.raw()
		if d.err != nil {
			break
		}
		a, err := decodeAccount(c)
		if err != nil {
			return nil, err
		}
		accounts = append(accounts, a)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCodec
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := checkOrder(accounts); err != nil {
		return nil, err
	}
	return accounts, nil
}

// splitAccounts splits what encodeAccounts wrote into its accounts' IDs
// and chunks, without decoding them.
func splitAccounts(b []byte) (ids []string, chunks [][]byte, err error) {
	d := &tabDec{b: b}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		c := d.raw()
		id := (&tabDec{b: c}).str()
		if d.err == nil && id == "" {
			d.err = errCodec
		}
		ids, chunks = append(ids, id), append(chunks, c)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCodec
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return ids, chunks, nil
}

// checkOrder checks that accounts are in strictly increasing ID order, as
// the encodings write them.
func checkOrder(accounts []*table.Account) error {
	for i := 1; i < len(accounts); i++ {
		if accounts[i].ID <= accounts[i-1].ID {
			return errCodec
		}
	}
	return nil
}

// decodeAccount decodes one chunk of encodeAccount.
func decodeAccount(b []byte) (*table.Account, error) {
	d := &tabDec{b: b}
	id := d.str()
	n := d.count()
	d.settings = make([]*table.Settings, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		s := &table.Settings{}
		for _, st := range table.SettingList {
			var v any
			switch st.Kind {
			case table.IntSetting:
				v = d.int()
			case table.BoolSetting:
				v = d.bool()
			default:
				v = d.str()
			}
			if err := st.Set(s, v); err != nil {
				return nil, errCodec
			}
		}
		d.settings = append(d.settings, s)
	}
	n = d.count()
	d.provs = make([]*table.Provenance, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		p := &table.Provenance{Enabled: d.str()}
		for _, st := range table.SettingList {
			st.SetProvenance(p, d.str())
		}
		d.provs = append(d.provs, p)
	}
	a := d.account()
	if d.err == nil && (len(d.b) != 0 || a.ID != id) {
		d.err = errCodec
	}
	if d.err != nil {
		return nil, d.err
	}
	return a, nil
}

type tabDec struct {
	b        []byte
	err      error
	settings []*table.Settings
	provs    []*table.Provenance
}

func (d *tabDec) fail() {
	if d.err == nil {
		d.err = errCodec
	}
	d.b = nil
}

func (d *tabDec) uint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *tabDec) int() int {
	if d.err != nil {
		return 0
	}
	n, k := binary.Varint(d.b)
	if k <= 0 || n < math.MinInt || n > math.MaxInt {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return int(n)
}

// count reads a length, which can never exceed the bytes left.
func (d *tabDec) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *tabDec) str() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *tabDec) bool() bool {
	if d.err != nil || len(d.b) == 0 || d.b[0] > 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// optCount reads the length+1 of a list or map that may be nil.
func (d *tabDec) optCount() (n int, isNil bool) {
	n = d.count()
	if n == 0 {
		return 0, true
	}
	return n - 1, false
}

func (d *tabDec) strs() []string {
	n, isNil := d.optCount()
	if isNil || d.err != nil {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.str())
	}
	return out
}

func (d *tabDec) refs() (*table.Settings, *table.Provenance) {
	var s *table.Settings
	var p *table.Provenance
	if i := d.uint(); i > 0 {
		if i > uint64(len(d.settings)) {
			d.fail()
			return nil, nil
		}
		s = d.settings[i-1]
	}
	if i := d.uint(); i > 0 {
		if i > uint64(len(d.provs)) {
			d.fail()
			return nil, nil
		}
		p = d.provs[i-1]
	}
	return s, p
}

func (d *tabDec) cells(c *table.Cells) {
	for dir := range c {
		for n := range c[dir] {
			c[dir][n].Record = d.bool()
			c[dir][n].Settings, c[dir][n].Provenance = d.refs()
		}
	}
}

func (d *tabDec) account() *table.Account {
	a := &table.Account{ID: d.str()}
	d.cells(&a.Cells)
	for _, m := range []*map[string]*table.Endpoint{&a.Users, &a.Devices} {
		n, isNil := d.optCount()
		if isNil || d.err != nil {
			continue
		}
		*m = make(map[string]*table.Endpoint, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.str()
			(*m)[k] = d.endpoint()
		}
	}
	n, isNil := d.optCount()
	if !isNil {
		a.Callflows = make([]*table.Callflow, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			cf := &table.Callflow{ID: d.str(), Numbers: d.strs(), Patterns: d.strs()}
			cf.Actions = d.actions()
			a.Callflows = append(a.Callflows, cf)
		}
	}
	return a
}

func (d *tabDec) endpoint() *table.Endpoint {
	ep := &table.Endpoint{Kind: table.EndpointKind(d.uint()), ID: d.str(), Owner: d.str()}
	if ep.Kind != table.User && ep.Kind != table.Device {
		d.fail()
	}
	d.cells(&ep.Cells)
	if d.bool() {
		ep.Metaflows = &table.Metaflows{BindingDigit: d.str(), DigitTimeout: d.int(), ListenOn: table.DTMFSource(d.str())}
		ep.Metaflows.Numbers = d.bindings()
		ep.Metaflows.Patterns = d.bindings()
	}
	return ep
}

func (d *tabDec) bindings() []table.MetaflowBinding {
	n, isNil := d.optCount()
	if isNil || d.err != nil {
		return nil
	}
	out := make([]table.MetaflowBinding, n)
	for i := 0; i < n && d.err == nil; i++ {
		out[i].Code = d.str()
		out[i].From = d.str()
		d.action(&out[i].Action)
	}
	return out
}

func (d *tabDec) actions() []table.Action {
	n, isNil := d.optCount()
	if isNil || d.err != nil {
		return nil
	}
	out := make([]table.Action, n)
	for i := 0; i < n && d.err == nil; i++ {
		d.action(&out[i])
	}
	return out
}

func (d *tabDec) action(a *table.Action) {
	a.Module, a.Action, a.Label, a.MediaName = table.Module(d.str()), table.Verb(d.str()), d.str(), d.str()
	a.FollowTransfer = d.bool()
	a.Origin, a.DTMFLeg, a.Scope = d.str(), table.DTMFSource(d.str()), table.StopScope(d.str())
	a.Settings, a.Provenance = d.refs()
}
