// Package table is the compiled form of a recording policy: for every
// account its four account cells, for every user and device its eight
// endpoint cells, its callflows and its resolved metaflows, each fully
// resolved with the provenance of every field.
//
// A Table is read-only once built. Lookups are O(1) and allocation-free, and
// the decisions of a call (which recordings it starts) live here so that the
// simulator and the runtime run the same code.
package table

import (
	"fmt"
	"regexp"
	"sort"
)

// FormatVersion is the version of the table's JSON format. Version 2 added
// the settings stereo, announce and announce_to.
const FormatVersion = 2

// Direction is seen from the scope that owns a cell: for an endpoint,
// outbound = calls it places and inbound = calls it receives; for the
// account, inbound is about where a call comes from and outbound about where
// it goes.
type Direction uint8

// The two directions.
const (
	Inbound Direction = iota
	Outbound
)

// Directions lists both directions in table order.
var Directions = [2]Direction{Inbound, Outbound}

func (d Direction) String() string {
	if d == Outbound {
		return "outbound"
	}
	return "inbound"
}

// ParseDirection parses "inbound" or "outbound".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "inbound":
		return Inbound, nil
	case "outbound":
		return Outbound, nil
	}
	return 0, fmt.Errorf("invalid direction %q (want inbound or outbound)", s)
}

// Network says whether the other party of a call is on the platform.
type Network uint8

// The two networks: onnet is a device registered in the account, offnet
// the PSTN or a carrier.
const (
	Onnet Network = iota
	Offnet
)

// Networks lists both networks in table order.
var Networks = [2]Network{Onnet, Offnet}

func (n Network) String() string {
	if n == Offnet {
		return "offnet"
	}
	return "onnet"
}

// ParseNetwork parses "onnet" or "offnet".
func ParseNetwork(s string) (Network, error) {
	switch s {
	case "onnet":
		return Onnet, nil
	case "offnet":
		return Offnet, nil
	}
	return 0, fmt.Errorf("invalid network %q (want onnet or offnet)", s)
}

// Settings are the resolved settings of a cell or an action. Every field is
// set; URL is empty when recordings are kept locally. SettingList
// describes each field (settings.go): a new setting is a field here and
// in Provenance plus its entry there.
type Settings struct {
	Format           string // mp3 or wav
	TimeLimit        int    // seconds
	RecordMinSec     int    // seconds
	RecordSampleRate int    // Hz
	RecordOnAnswer   bool
	RecordOnBridge   bool
	Method           string // put or post
	URL              string // empty: keep locally
	// Stereo records the leg's two parties on two channels (FreeSWITCH's
	// RECORD_STEREO).
	Stereo bool
	// Announce is the consent announcement played when the recording
	// starts, as the policy says it: a media path on the switch, Tone, or
	// empty for none. AnnounceMedia gives what the switch plays.
	Announce string
	// AnnounceTo says who hears it: both, aleg (the recorded leg's own
	// party) or bleg (the party bridged to it).
	AnnounceTo string
}

// Tone is the announce value that plays ToneStream, a beep.
const Tone = "tone"

// ToneStream is what an announce of Tone plays: a 500 ms 1 kHz beep. It is
// the one place the beep is defined.
const ToneStream = "tone_stream://%(500,0,1000)"

// AnnounceMedia returns what the switch plays for an announce setting: the
// media path itself, ToneStream for Tone, "" for none.
func AnnounceMedia(announce string) string {
	if announce == Tone {
		return ToneStream
	}
	return announce
}

// Provenance says where each resolved field came from, as
// "<scope> <path within the scope>", e.g. "device:d1 call_recording.any.any.enabled",
// "defaults format" or "builtin time_limit". URL is empty when no scope set
// one.
type Provenance struct {
	Enabled          string
	Format           string
	TimeLimit        string
	RecordMinSec     string
	RecordSampleRate string
	RecordOnAnswer   string
	RecordOnBridge   string
	Method           string
	URL              string
	Stereo           string
	Announce         string // empty when no scope set one
	AnnounceTo       string
}

// Cell is one resolved (direction, network) cell of a scope. Settings and
// Provenance are shared between identical cells: never modify them.
type Cell struct {
	Record     bool
	Settings   *Settings
	Provenance *Provenance
}

// Cells holds the four cells of a scope, indexed [Direction][Network].
type Cells [2][2]Cell

// Get returns the cell for a direction and a network.
func (c *Cells) Get(d Direction, n Network) *Cell { return &c[d][n] }

// EndpointKind says whether an endpoint is a user or a device.
type EndpointKind uint8

// The two kinds of endpoint.
const (
	User EndpointKind = iota
	Device
)

func (k EndpointKind) String() string {
	if k == Device {
		return "device"
	}
	return "user"
}

// Endpoint is a user or a device of an account with its eight cells.
type Endpoint struct {
	Kind  EndpointKind
	ID    string
	Owner string // devices only: the owning user, or empty
	Cells Cells
	// Metaflows are the endpoint's resolved metaflows (device > owner >
	// account), nil when none apply.
	Metaflows *Metaflows
}

// Ref returns "device:<id>" or "user:<id>".
func (e *Endpoint) Ref() string { return e.Kind.String() + ":" + e.ID }

// Module is the module of a callflow or metaflow action.
type Module string

// The modules.
const (
	// RecordCall records both parties of the leg.
	RecordCall Module = "record_call"
	// RecordCaller records the caller's audio only; its action is
	// always Start.
	RecordCaller Module = "record_caller"
)

// Valid reports whether m is one of the modules.
func (m Module) Valid() bool { return m == RecordCall || m == RecordCaller }

// Verb is what an action does.
type Verb string

// The verbs of an action.
const (
	Start  Verb = "start"
	Stop   Verb = "stop"
	Mask   Verb = "mask"
	Unmask Verb = "unmask"
	Pause  Verb = "pause"
	Resume Verb = "resume"
	Toggle Verb = "toggle"
)

// Valid reports whether v is one of the verbs.
func (v Verb) Valid() bool {
	switch v {
	case Start, Stop, Mask, Unmask, Pause, Resume, Toggle:
		return true
	}
	return false
}

// StopScope says what a metaflow stop stops.
type StopScope string

// The scopes of a stop.
const (
	// StopOwn, the default, stops the recordings the metaflow started.
	StopOwn StopScope = ""
	// StopCall stops the call's policy recordings too.
	StopCall StopScope = "call"
)

// Valid reports whether s is one of the stop scopes.
func (s StopScope) Valid() bool { return s == StopOwn || s == StopCall }

// DTMFSource says whose key presses a metaflow takes: the endpoint's own
// leg (self), another leg of the call (peer) or both.
type DTMFSource string

// The sources of DTMF.
const (
	DTMFSelf DTMFSource = "self"
	DTMFPeer DTMFSource = "peer"
	DTMFBoth DTMFSource = "both"
)

// Valid reports whether d is one of the sources.
func (d DTMFSource) Valid() bool { return d == DTMFSelf || d == DTMFPeer || d == DTMFBoth }

// Action is a resolved callflow or metaflow action.
type Action struct {
	Module         Module
	Action         Verb
	Label          string     // optional; shown in the origin of a recording
	MediaName      string     // optional; names the recorded file
	FollowTransfer bool       // the recording follows a transfer
	Origin         string     // optional; replaces the recording's origin in its metadata
	DTMFLeg        DTMFSource // metaflows only, optional (""): whose DTMF fires the code
	Scope          StopScope  // metaflow stop only, optional
	Settings       *Settings
	Provenance     *Provenance
}

// Callflow runs its actions on a call whose destination number is one of
// Numbers or matches one of Patterns.
type Callflow struct {
	ID       string
	Numbers  []string
	Patterns []string
	Actions  []Action

	regexps []*regexp.Regexp
}

// MetaflowBinding is one DTMF code of a metaflow.
type MetaflowBinding struct {
	Code   string // the digits after the binding digit ("71"), or a pattern
	Action Action
	// From says which scope the binding comes from ("device:d1",
	// "user:bob", "account:acme").
	From string

	re *regexp.Regexp // patterns only
}

// Metaflows are the resolved in-call DTMF codes of an endpoint.
type Metaflows struct {
	BindingDigit string // one of 0-9 * #
	DigitTimeout int    // milliseconds
	ListenOn     DTMFSource
	Numbers      []MetaflowBinding
	Patterns     []MetaflowBinding
}

// Account is one tenant of the table.
type Account struct {
	ID        string
	Cells     Cells
	Users     map[string]*Endpoint
	Devices   map[string]*Endpoint
	Callflows []*Callflow // sorted by ID

	userIDs, deviceIDs []string       // sorted
	numbers            map[string]int // exact number -> callflow index
	ownerDevices       map[string][]string
	// indexed is set once index ran: an account is read-only from then on
	// and may be shared by several tables (a reload reuses the accounts of
	// unchanged files).
	indexed bool
	digest  [32]byte // sha256 of the account's canonical JSON
}

// Table is a compiled policy. It is read-only once returned by New or Decode.
type Table struct {
	// Version is "sha256:<hex>" of the policy's meaning; see package doc of
	// the compiler and the README.
	Version  string
	Accounts map[string]*Account

	accountIDs []string
}

// DefaultsDigest stands for the built-in defaults the accounts of a table
// were resolved with: the compiler's canonical JSON of them
// (compiler.DefaultsDigest). The table hashes it into its version, so
// that a change of a built-in default changes every version, without
// this package knowing where the defaults come from.
type DefaultsDigest string

// New indexes the accounts and computes the table's version from them
// and the digest of the built-in defaults they were resolved with. The
// accounts must be complete (every cell set); New takes ownership of them.
func New(accounts []*Account, defaults DefaultsDigest) (*Table, error) {
	t, err := build(accounts)
	if err != nil {
		return nil, err
	}
	v, err := t.computeVersion(defaults)
	if err != nil {
		return nil, err
	}
	t.Version = v
	return t, nil
}

// NewVersioned is New for accounts whose version is already known and
// trusted: a table the compiler decodes from its own manifest, or from
// its compile worker, both written by the same build and checked for
// integrity. It indexes the accounts without hashing them again, which is
// most of New's cost.
func NewVersioned(accounts []*Account, version string) (*Table, error) {
	t, err := build(accounts)
	if err != nil {
		return nil, err
	}
	t.Version = version
	return t, nil
}

// build indexes the accounts into a table without a version.
func build(accounts []*Account) (*Table, error) {
	t := &Table{Accounts: make(map[string]*Account, len(accounts))}
	for _, a := range accounts {
		if _, dup := t.Accounts[a.ID]; dup {
			return nil, fmt.Errorf("account %q defined twice", a.ID)
		}
		if !a.indexed {
			if err := a.index(); err != nil {
				return nil, fmt.Errorf("account %s: %w", a.ID, err)
			}
		}
		t.Accounts[a.ID] = a
		t.accountIDs = append(t.accountIDs, a.ID)
	}
	sort.Strings(t.accountIDs)
	return t, nil
}

func (a *Account) index() error {
	if a.Users == nil {
		a.Users = map[string]*Endpoint{}
	}
	if a.Devices == nil {
		a.Devices = map[string]*Endpoint{}
	}
	a.userIDs = sortedKeys(a.Users)
	a.deviceIDs = sortedKeys(a.Devices)
	a.ownerDevices = ownerDevices(a.Devices, a.deviceIDs)
	for _, e := range a.Users {
		if err := e.check(); err != nil {
			return err
		}
	}
	for _, e := range a.Devices {
		if err := e.check(); err != nil {
			return err
		}
	}
	if err := a.Cells.check("account cell"); err != nil {
		return err
	}
	sort.Slice(a.Callflows, func(i, j int) bool { return a.Callflows[i].ID < a.Callflows[j].ID })
	a.numbers = map[string]int{}
	for i, cf := range a.Callflows {
		for _, n := range cf.Numbers {
			if j, dup := a.numbers[n]; dup && j != i {
				return fmt.Errorf("number %q claimed by callflows %s and %s", n, a.Callflows[j].ID, cf.ID)
			}
			a.numbers[n] = i
		}
		cf.regexps = cf.regexps[:0]
		for _, p := range cf.Patterns {
			re, err := regexp.Compile(p)
			if err != nil {
				return fmt.Errorf("callflow %s: %w", cf.ID, err)
			}
			cf.regexps = append(cf.regexps, re)
		}
	}
	a.indexed = true
	return nil
}

// ownerDevices returns the devices of each owner (ids: the devices'
// sorted ids), each owner's list a window of one slice.
func ownerDevices(devices map[string]*Endpoint, ids []string) map[string][]string {
	count := map[string]int{}
	owned := 0
	for _, id := range ids {
		if o := devices[id].Owner; o != "" {
			count[o]++
			owned++
		}
	}
	out := make(map[string][]string, len(count))
	all := make([]string, 0, owned)
	for _, id := range ids {
		o := devices[id].Owner
		if o == "" {
			continue
		}
		list, ok := out[o]
		if !ok {
			list = all[len(all) : len(all) : len(all)+count[o]]
			all = all[:len(all)+count[o]]
		}
		out[o] = append(list, id)
	}
	return out
}

func (e *Endpoint) check() error {
	if err := e.Cells.check(e.Ref()); err != nil {
		return err
	}
	if e.Metaflows != nil {
		for i := range e.Metaflows.Patterns {
			b := &e.Metaflows.Patterns[i]
			if b.re != nil {
				// Metaflows shared by endpoints (the compiler
				// shares an account's among all that have only
				// its) are compiled once.
				continue
			}
			re, err := regexp.Compile(b.Code)
			if err != nil {
				return fmt.Errorf("%s metaflow pattern: %w", e.Ref(), err)
			}
			b.re = re
		}
	}
	return nil
}

func (c *Cells) check(what string) error {
	for _, d := range Directions {
		for _, n := range Networks {
			cell := c.Get(d, n)
			if cell.Settings == nil || cell.Provenance == nil {
				return fmt.Errorf("%s %s.%s is incomplete", what, d, n)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AccountIDs returns the ids of the accounts in sorted order. The slice is
// shared: do not modify it.
func (t *Table) AccountIDs() []string { return t.accountIDs }

// Account returns an account by id.
func (t *Table) Account(id string) (*Account, bool) {
	a, ok := t.Accounts[id]
	return a, ok
}

// UserIDs returns the account's user ids in sorted order (shared slice).
func (a *Account) UserIDs() []string { return a.userIDs }

// DeviceIDs returns the account's device ids in sorted order (shared slice).
func (a *Account) DeviceIDs() []string { return a.deviceIDs }

// DevicesOf returns the ids of the devices owned by a user, sorted (shared
// slice).
func (a *Account) DevicesOf(user string) []string { return a.ownerDevices[user] }

// Endpoint returns a user or a device of the account.
func (a *Account) Endpoint(kind EndpointKind, id string) (*Endpoint, bool) {
	var e *Endpoint
	if kind == Device {
		e = a.Devices[id]
	} else {
		e = a.Users[id]
	}
	return e, e != nil
}

// Lookup returns the cell (d, n) of a user or a device of an account. It is
// O(1) and never allocates.
func (t *Table) Lookup(account string, kind EndpointKind, endpoint string, d Direction, n Network) (*Cell, bool) {
	a := t.Accounts[account]
	if a == nil {
		return nil, false
	}
	e, ok := a.Endpoint(kind, endpoint)
	if !ok {
		return nil, false
	}
	return e.Cells.Get(d, n), true
}

// LookupAccount returns the account cell (d, n) of an account. It is O(1)
// and never allocates.
func (t *Table) LookupAccount(account string, d Direction, n Network) (*Cell, bool) {
	a := t.Accounts[account]
	if a == nil {
		return nil, false
	}
	return a.Cells.Get(d, n), true
}

// MatchCallflow returns the callflow whose numbers or patterns match a
// destination number: an exact number beats every pattern, and among
// patterns the longest match wins (ties, which vet rejects where it can
// see them, go to the callflow with the smallest id).
func (a *Account) MatchCallflow(number string) (*Callflow, bool) {
	if i, ok := a.numbers[number]; ok {
		return a.Callflows[i], true
	}
	var best *Callflow
	bestLen := -1
	for _, cf := range a.Callflows {
		for _, re := range cf.regexps {
			loc := re.FindStringIndex(number)
			if loc == nil {
				continue
			}
			if l := loc[1] - loc[0]; l > bestLen {
				best, bestLen = cf, l
			}
		}
	}
	return best, best != nil
}

// Match returns the binding whose code equals digits, or whose pattern
// matches them (the longest match wins). digits are what followed the
// binding digit.
func (m *Metaflows) Match(digits string) (*MetaflowBinding, bool) {
	for i := range m.Numbers {
		if m.Numbers[i].Code == digits {
			return &m.Numbers[i], true
		}
	}
	var best *MetaflowBinding
	bestLen := -1
	for i := range m.Patterns {
		b := &m.Patterns[i]
		re := b.re
		if re == nil {
			continue
		}
		loc := re.FindStringIndex(digits)
		if loc != nil && loc[1]-loc[0] > bestLen {
			best, bestLen = b, loc[1]-loc[0]
		}
	}
	return best, best != nil
}

// MayMatch reports whether more digits could still complete a code that
// starts with digits: a metaflow listener keeps collecting while it does.
func (m *Metaflows) MayMatch(digits string) bool {
	for _, b := range m.Numbers {
		if len(b.Code) > len(digits) && b.Code[:len(digits)] == digits {
			return true
		}
	}
	return len(m.Patterns) > 0
}

// AnyDTMFLeg reports whether a code's dtmf_leg makes the metaflows take
// the digits of source (DTMFSelf: the endpoint's own leg, DTMFPeer:
// another leg of the call) even where listen_on does not.
func (m *Metaflows) AnyDTMFLeg(source DTMFSource) bool {
	for _, list := range [][]MetaflowBinding{m.Numbers, m.Patterns} {
		for i := range list {
			if on := list[i].Action.DTMFLeg; on == DTMFBoth || on == source {
				return true
			}
		}
	}
	return false
}
