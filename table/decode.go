package table

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The JSON shapes of the table, used to read a table back.
type (
	jsonTable struct {
		FormatVersion *int                    `json:"format_version"`
		Version       string                  `json:"version"`
		Accounts      map[string]*jsonAccount `json:"accounts"`
	}
	jsonAccount struct {
		Account   *jsonCells                `json:"account"`
		Users     map[string]*jsonCells     `json:"users"`
		Devices   map[string]*jsonDevice    `json:"devices"`
		Callflows map[string]*jsonCallflow  `json:"callflows"`
		Metaflows map[string]*jsonMetaflows `json:"metaflows"`
	}
	jsonCells struct {
		Inbound  *jsonNetworks `json:"inbound"`
		Outbound *jsonNetworks `json:"outbound"`
	}
	jsonDevice struct {
		jsonCells
		Owner *string `json:"owner"`
	}
	jsonNetworks struct {
		Onnet  *jsonCell `json:"onnet"`
		Offnet *jsonCell `json:"offnet"`
	}
	jsonCell struct {
		Record     *bool          `json:"record"`
		Settings   jsonSettings   `json:"settings"`
		Provenance jsonProvenance `json:"provenance"`
	}
	// jsonSettings and jsonProvenance are decoded by SettingList.
	jsonSettings   = map[string]json.RawMessage
	jsonProvenance = map[string]string
	jsonCallflow   struct {
		Numbers  []string     `json:"numbers"`
		Patterns []string     `json:"patterns"`
		Actions  []jsonAction `json:"actions"`
	}
	jsonAction struct {
		Module         string         `json:"module"`
		Action         string         `json:"action"`
		Label          string         `json:"label"`
		MediaName      string         `json:"media_name"`
		FollowTransfer bool           `json:"should_follow_transfer"`
		Origin         string         `json:"origin"`
		DTMFLeg        string         `json:"dtmf_leg"`
		Scope          string         `json:"scope"`
		Settings       jsonSettings   `json:"settings"`
		Provenance     jsonProvenance `json:"provenance"`
	}
	jsonMetaflows struct {
		BindingDigit string                  `json:"binding_digit"`
		DigitTimeout int                     `json:"digit_timeout"`
		ListenOn     string                  `json:"listen_on"`
		Numbers      map[string]*jsonBinding `json:"numbers"`
		Patterns     map[string]*jsonBinding `json:"patterns"`
	}
	jsonBinding struct {
		Action *jsonAction `json:"action"`
		From   string      `json:"from"`
	}
)

// Decode reads a table written by WriteJSON. It checks the format version,
// that every cell is present and that the version matches the content, so
// a table edited by hand or truncated is rejected rather than trusted.
// defaults is the digest of the built-in defaults of the compiler that
// reads it (compiler.DefaultsDigest): a table compiled with other defaults
// has another version and is rejected too.
func Decode(r io.Reader, defaults DefaultsDigest) (*Table, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var jt jsonTable
	if err := dec.Decode(&jt); err != nil {
		return nil, fmt.Errorf("decoding table: %w", err)
	}
	if jt.FormatVersion == nil {
		return nil, fmt.Errorf("decoding table: no format_version: not a recpol table")
	}
	if *jt.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("decoding table: format_version %d, this recpol reads %d", *jt.FormatVersion, FormatVersion)
	}
	in := NewInterner()
	ids := make([]string, 0, len(jt.Accounts))
	for id := range jt.Accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	accounts := make([]*Account, 0, len(ids))
	for _, id := range ids {
		a, err := decodeAccount(in, id, jt.Accounts[id])
		if err != nil {
			return nil, fmt.Errorf("decoding table: account %q: %w", id, err)
		}
		accounts = append(accounts, a)
	}
	t, err := New(accounts, defaults)
	if err != nil {
		return nil, fmt.Errorf("decoding table: %w", err)
	}
	if t.Version != jt.Version {
		return nil, fmt.Errorf("decoding table: its version %q does not match its content (%s): the file was changed after it was compiled", jt.Version, t.Version)
	}
	return t, nil
}

// DecodeBytes is Decode on a byte slice.
func DecodeBytes(b []byte, defaults DefaultsDigest) (*Table, error) {
	return Decode(bytes.NewReader(b), defaults)
}

func decodeAccount(in *Interner, id string, ja *jsonAccount) (*Account, error) {
	if ja == nil {
		return nil, fmt.Errorf("null account")
	}
	a := &Account{ID: id, Users: map[string]*Endpoint{}, Devices: map[string]*Endpoint{}}
	if err := decodeCells(in, &a.Cells, ja.Account); err != nil {
		return nil, fmt.Errorf("account cells: %w", err)
	}
	for uid, jc := range ja.Users {
		e := &Endpoint{Kind: User, ID: uid}
		if err := decodeCells(in, &e.Cells, jc); err != nil {
			return nil, fmt.Errorf("user %q: %w", uid, err)
		}
		a.Users[uid] = e
	}
	for did, jd := range ja.Devices {
		if jd == nil || jd.Owner == nil {
			return nil, fmt.Errorf("device %q: no owner field", did)
		}
		e := &Endpoint{Kind: Device, ID: did, Owner: *jd.Owner}
		if err := decodeCells(in, &e.Cells, &jd.jsonCells); err != nil {
			return nil, fmt.Errorf("device %q: %w", did, err)
		}
		a.Devices[did] = e
	}
	for cid, jc := range ja.Callflows {
		if jc == nil {
			return nil, fmt.Errorf("callflow %q: null", cid)
		}
		cf := &Callflow{ID: cid, Numbers: jc.Numbers, Patterns: jc.Patterns}
		for i := range jc.Actions {
			act, err := decodeAction(in, &jc.Actions[i])
			if err != nil {
				return nil, fmt.Errorf("callflow %q action %d: %w", cid, i, err)
			}
			cf.Actions = append(cf.Actions, act)
		}
		a.Callflows = append(a.Callflows, cf)
	}
	for key, jm := range ja.Metaflows {
		kind, eid, _ := strings.Cut(key, ":")
		var e *Endpoint
		switch kind {
		case "device":
			e = a.Devices[eid]
		case "user":
			e = a.Users[eid]
		}
		if e == nil || jm == nil {
			return nil, fmt.Errorf("metaflows of unknown endpoint %q", key)
		}
		m := &Metaflows{BindingDigit: jm.BindingDigit, DigitTimeout: jm.DigitTimeout, ListenOn: DTMFSource(jm.ListenOn)}
		if !m.ListenOn.Valid() {
			return nil, fmt.Errorf("metaflows of %s: unknown listen_on %q", key, jm.ListenOn)
		}
		var err error
		if m.Numbers, err = decodeBindings(in, jm.Numbers); err != nil {
			return nil, fmt.Errorf("metaflows of %s: %w", key, err)
		}
		if m.Patterns, err = decodeBindings(in, jm.Patterns); err != nil {
			return nil, fmt.Errorf("metaflows of %s: %w", key, err)
		}
		e.Metaflows = m
	}
	return a, nil
}

func decodeBindings(in *Interner, jb map[string]*jsonBinding) ([]MetaflowBinding, error) {
	codes := make([]string, 0, len(jb))
	for c := range jb {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var out []MetaflowBinding
	for _, c := range codes {
		b := jb[c]
		if b == nil || b.Action == nil {
			return nil, fmt.Errorf("code %q has no action", c)
		}
		act, err := decodeAction(in, b.Action)
		if err != nil {
			return nil, fmt.Errorf("code %q: %w", c, err)
		}
		out = append(out, MetaflowBinding{Code: c, Action: act, From: b.From})
	}
	return out, nil
}

func decodeAction(in *Interner, ja *jsonAction) (Action, error) {
	s, err := decodeSettings(ja.Settings)
	if err != nil {
		return Action{}, err
	}
	if ja.Provenance == nil {
		return Action{}, fmt.Errorf("no provenance")
	}
	p, err := decodeProvenanceJSON(ja.Provenance)
	if err != nil {
		return Action{}, err
	}
	a := Action{Module: Module(ja.Module), Action: Verb(ja.Action), Label: ja.Label, MediaName: ja.MediaName,
		FollowTransfer: ja.FollowTransfer, Origin: ja.Origin, DTMFLeg: DTMFSource(ja.DTMFLeg), Scope: StopScope(ja.Scope),
		Settings: in.Settings(s), Provenance: in.Provenance(p)}
	switch {
	case !a.Module.Valid():
		return Action{}, fmt.Errorf("unknown module %q", ja.Module)
	case !a.Action.Valid():
		return Action{}, fmt.Errorf("unknown action %q", ja.Action)
	case a.DTMFLeg != "" && !a.DTMFLeg.Valid():
		return Action{}, fmt.Errorf("unknown dtmf_leg %q", ja.DTMFLeg)
	case !a.Scope.Valid():
		return Action{}, fmt.Errorf("unknown scope %q", ja.Scope)
	}
	return a, nil
}

func decodeCells(in *Interner, dst *Cells, jc *jsonCells) error {
	if jc == nil {
		return fmt.Errorf("no cells")
	}
	for _, d := range Directions {
		jn := jc.Inbound
		if d == Outbound {
			jn = jc.Outbound
		}
		if jn == nil {
			return fmt.Errorf("no %s cells", d)
		}
		for _, n := range Networks {
			cell := jn.Onnet
			if n == Offnet {
				cell = jn.Offnet
			}
			if cell == nil || cell.Record == nil || cell.Provenance == nil {
				return fmt.Errorf("cell %s.%s is missing or incomplete", d, n)
			}
			s, err := decodeSettings(cell.Settings)
			if err != nil {
				return fmt.Errorf("cell %s.%s: %w", d, n, err)
			}
			p, err := decodeProvenanceJSON(cell.Provenance)
			if err != nil {
				return fmt.Errorf("cell %s.%s: %w", d, n, err)
			}
			*dst.Get(d, n) = Cell{Record: *cell.Record, Settings: in.Settings(s), Provenance: in.Provenance(p)}
		}
	}
	return nil
}

func decodeSettings(js jsonSettings) (Settings, error) { return decodeSettingsJSON(js) }

// Interner stores identical settings and provenance once, so that a large
// table costs far less in memory than its JSON. It is not safe for
// concurrent use.
type Interner struct {
	settings   map[Settings]*Settings
	provenance map[Provenance]*Provenance
	// provSlab is where the shared provenances are allocated,
	// provenanceChunk at a time: a table holds thousands, which as many
	// blocks, among a compile's garbage of their size, fragmented the
	// heap.
	provSlab []Provenance
}

// provenanceChunk is how many provenances an Interner allocates at once.
const provenanceChunk = 64

// NewInterner returns an empty interner.
func NewInterner() *Interner {
	return &Interner{settings: map[Settings]*Settings{}, provenance: map[Provenance]*Provenance{}}
}

// Settings returns the shared copy of s.
func (in *Interner) Settings(s Settings) *Settings {
	if p, ok := in.settings[s]; ok {
		return p
	}
	// A copy made only here, so that s itself need not be on the heap
	// for a value found.
	p := new(Settings)
	*p = s
	in.settings[s] = p
	return p
}

// Provenance returns the shared copy of p.
func (in *Interner) Provenance(p Provenance) *Provenance {
	if q, ok := in.provenance[p]; ok {
		return q
	}
	if len(in.provSlab) == 0 {
		in.provSlab = make([]Provenance, provenanceChunk)
	}
	q := &in.provSlab[0]
	in.provSlab = in.provSlab[1:]
	*q = p
	in.provenance[p] = q
	return q
}

// ForgetProvenances forgets the provenances interned so far, as a new
// Interner would, but keeps what it allocates them from: the compiler
// interns each account group's provenances on their own, with one
// Interner per worker.
func (in *Interner) ForgetProvenances() {
	clear(in.provenance)
}
