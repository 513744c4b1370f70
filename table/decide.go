package table

import (
	"fmt"
	"github.com/recpol/recpol/internal/suggest"
	"strings"
)

// PartyKind says what is at one end of a call.
type PartyKind uint8

// The kinds of party: the PSTN, a device of the account, a user of the
// account (whose devices all ring), or another account of the platform.
const (
	OffnetParty PartyKind = iota
	DeviceParty
	UserParty
	// OtherAccountParty is a party on another account of the platform
	// (SPEC 2.7): a call from it arrives onnet and starts no caller
	// recording in this account; a call to it is routed onnet and rings
	// no device of this account. That account takes its own decisions.
	OtherAccountParty
)

// Party is the caller or the callee of a call.
type Party struct {
	Kind PartyKind
	ID   string // device or user id; empty for offnet
}

// OffnetRef returns the party on the PSTN.
func OffnetRef() Party { return Party{Kind: OffnetParty} }

// DeviceRef returns the party device:id.
func DeviceRef(id string) Party { return Party{Kind: DeviceParty, ID: id} }

// UserRef returns the party user:id.
func UserRef(id string) Party { return Party{Kind: UserParty, ID: id} }

// OtherAccountRef returns the party on another account of the platform.
func OtherAccountRef() Party { return Party{Kind: OtherAccountParty} }

// OtherAccount is how a party on another account is written.
const OtherAccount = "other-account"

// String returns "offnet", "device:<id>", "user:<id>" or "other-account".
func (p Party) String() string {
	switch p.Kind {
	case DeviceParty:
		return "device:" + p.ID
	case UserParty:
		return "user:" + p.ID
	case OtherAccountParty:
		return OtherAccount
	}
	return "offnet"
}

// Network returns the network a party is on.
func (p Party) Network() Network {
	if p.Kind == OffnetParty {
		return Offnet
	}
	return Onnet
}

// ParseParty parses "offnet", "device:<id>", "user:<id>" or
// "other-account".
func ParseParty(s string) (Party, error) {
	switch s {
	case "offnet":
		return Party{Kind: OffnetParty}, nil
	case OtherAccount:
		return OtherAccountRef(), nil
	}
	kind, id, ok := strings.Cut(s, ":")
	if ok && id != "" {
		switch kind {
		case "device":
			return DeviceRef(id), nil
		case "user":
			return UserRef(id), nil
		}
	}
	return Party{}, fmt.Errorf("invalid party %q (want offnet, device:<id>, user:<id> or %s)", s, OtherAccount)
}

// Call is a call as one account sees it.
type Call struct {
	From Party // an onnet device, offnet, or another account
	To   Party // an onnet device, a user, offnet, or another account
}

// AccountLeg is the leg the account's recording records: the A-leg, but
// for a call from another account the account's first leg of the call, a
// B-leg (SPEC 2.7).
func (c Call) AccountLeg() Leg {
	if c.From.Kind == OtherAccountParty {
		return LegB
	}
	return LegA
}

// Scope says which of the three decisions of a call started a recording.
type Scope uint8

// The three decisions of a call.
const (
	ScopeAccount Scope = iota
	ScopeCaller
	ScopeCallee
)

func (s Scope) String() string {
	switch s {
	case ScopeCaller:
		return "caller"
	case ScopeCallee:
		return "callee"
	}
	return "account"
}

// Leg is the leg of a call a recording records.
type Leg uint8

// The A-leg is the caller's, a B-leg a callee device's.
const (
	LegA Leg = iota
	LegB
)

func (l Leg) String() string {
	if l == LegB {
		return "b"
	}
	return "a"
}

// Recording is a recording a call starts.
type Recording struct {
	Scope     Scope
	Endpoint  string // the device recorded; empty for the account
	Leg       Leg
	Direction Direction // the cell that started it
	Network   Network
	Origin    string
	Cell      *Cell
}

var (
	accountOrigin = [2][2]string{
		Inbound:  {Onnet: "inbound from onnet to account", Offnet: "inbound from offnet to account"},
		Outbound: {Onnet: "outbound to onnet from account", Offnet: "outbound to offnet from account"},
	}
	endpointOrigin = [2][2]string{
		Inbound:  {Onnet: "inbound from onnet to endpoint", Offnet: "inbound from offnet to endpoint"},
		Outbound: {Onnet: "outbound to onnet from endpoint", Offnet: "outbound to offnet from endpoint"},
	}
)

// AccountInbound is the first account decision of a call, taken when the
// caller's network is known: the account cell (inbound, from).
func (a *Account) AccountInbound(from Network) (Recording, bool) {
	c := a.Cells.Get(Inbound, from)
	return Recording{Scope: ScopeAccount, Leg: LegA, Direction: Inbound, Network: from,
		Origin: accountOrigin[Inbound][from], Cell: c}, c.Record
}

// AccountOutbound is the second account decision, taken only when
// AccountInbound did not record, once the call's destination network is
// known: the account cell (outbound, to).
func (a *Account) AccountOutbound(to Network) (Recording, bool) {
	c := a.Cells.Get(Outbound, to)
	return Recording{Scope: ScopeAccount, Leg: LegA, Direction: Outbound, Network: to,
		Origin: accountOrigin[Outbound][to], Cell: c}, c.Record
}

// AccountDecision returns the account's recording of a call, if any: at
// most one, inbound before outbound.
func (a *Account) AccountDecision(from, to Network) (Recording, bool) {
	if r, ok := a.AccountInbound(from); ok {
		return r, true
	}
	return a.AccountOutbound(to)
}

// CallerDecision is the caller device's cell (outbound, to); it records the
// A-leg.
func (a *Account) CallerDecision(device string, to Network) (Recording, bool) {
	e := a.Devices[device]
	if e == nil {
		return Recording{}, false
	}
	c := e.Cells.Get(Outbound, to)
	return Recording{Scope: ScopeCaller, Endpoint: device, Leg: LegA, Direction: Outbound, Network: to,
		Origin: endpointOrigin[Outbound][to], Cell: c}, c.Record
}

// CalleeDecision is a callee device's cell (inbound, from); it records that
// device's B-leg once the leg answers.
func (a *Account) CalleeDecision(device string, from Network) (Recording, bool) {
	e := a.Devices[device]
	if e == nil {
		return Recording{}, false
	}
	c := e.Cells.Get(Inbound, from)
	return Recording{Scope: ScopeCallee, Endpoint: device, Leg: LegB, Direction: Inbound, Network: from,
		Origin: endpointOrigin[Inbound][from], Cell: c}, c.Record
}

// Ringing returns the devices that ring for a call, sorted by id: the
// callee device, or every device of the callee user; never the caller's own
// device.
func (a *Account) Ringing(c Call) []string {
	caller := ""
	if c.From.Kind == DeviceParty {
		caller = c.From.ID
	}
	var ids []string
	switch c.To.Kind {
	case DeviceParty:
		if c.To.ID != caller {
			ids = []string{c.To.ID}
		}
	case UserParty:
		for _, id := range a.ownerDevices[c.To.ID] {
			if id != caller {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Decide returns the recordings a call starts when every ringing leg
// answers (SPEC 2.3): the account's (at most one), the caller device's, then
// one per ringing callee device in device order.
func (a *Account) Decide(c Call) ([]Recording, error) {
	switch c.From.Kind {
	case DeviceParty:
		if a.Devices[c.From.ID] == nil {
			return nil, fmt.Errorf("account %s has no device %q%s", a.ID, c.From.ID, didYouMeanOf(c.From.ID, a.Devices))
		}
	case OffnetParty, OtherAccountParty:
	default:
		return nil, fmt.Errorf("a call is placed by a device, from offnet or from another account, not by %s", c.From)
	}
	switch c.To.Kind {
	case DeviceParty:
		if a.Devices[c.To.ID] == nil {
			return nil, fmt.Errorf("account %s has no device %q%s", a.ID, c.To.ID, didYouMeanOf(c.To.ID, a.Devices))
		}
	case UserParty:
		if a.Users[c.To.ID] == nil {
			return nil, fmt.Errorf("account %s has no user %q%s", a.ID, c.To.ID, didYouMeanOf(c.To.ID, a.Users))
		}
	}
	from, to := c.From.Network(), c.To.Network()
	var recs []Recording
	if r, ok := a.AccountDecision(from, to); ok {
		r.Leg = c.AccountLeg()
		recs = append(recs, r)
	}
	if c.From.Kind == DeviceParty {
		if r, ok := a.CallerDecision(c.From.ID, to); ok {
			recs = append(recs, r)
		}
	}
	for _, id := range a.Ringing(c) {
		if r, ok := a.CalleeDecision(id, from); ok {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// DidYouMean is " (did you mean x?)" with the keys of m close to id, or
// "" when none is: for errors naming an unknown device, user or account.
func DidYouMean[V any](id string, m map[string]V) string { return didYouMeanOf(id, m) }

// didYouMeanOf is DidYouMean.
func didYouMeanOf[V any](id string, m map[string]V) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	if s := suggest.Names(id, names); len(s) > 0 {
		return " (did you mean " + strings.Join(s, ", ") + "?)"
	}
	return ""
}
