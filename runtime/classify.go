package runtime

import (
	"strings"

	"github.com/recpol/recpol/table"
)

// Event is one event-socket event as the engine sees it: its name and
// headers, channel variables as "variable_<name>" headers. Lookups are
// case-insensitive, because clients rewrite header names.
type Event struct {
	Name    string
	Headers map[string]string
	Body    string
}

// Get returns a header, case-insensitively.
func (e *Event) Get(name string) string {
	if v, ok := e.Headers[name]; ok {
		return v
	}
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Var returns the channel variable name, case-insensitively.
func (e *Event) Var(name string) string { return e.Get("variable_" + name) }

// vars copies the event's channel variables into dst, keyed by lower-case
// name, and reports whether any changed.
func (e *Event) vars(dst map[string]string) bool {
	changed := false
	for k, v := range e.Headers {
		if len(k) > 9 && strings.EqualFold(k[:9], "variable_") {
			name := strings.ToLower(k[9:])
			if dst[name] != v {
				dst[name] = v
				changed = true
			}
		}
	}
	return changed
}

// legClass is what a leg is, from the account's point of view.
type legClass struct {
	account string
	device  string // empty on an offnet leg
	network table.Network
}

// classifier turns a leg's channel variables into a legClass, by preset.
type classifier struct {
	preset                          string
	account, device, owner, network string // variable names, lower case
}

func newClassifier(c Classify) classifier {
	cl := classifier{preset: c.Preset}
	switch c.Preset {
	case "kazoo":
		cl.account, cl.device, cl.owner = "ecallmgr_account-id", "ecallmgr_authorizing-id", "ecallmgr_owner-id"
	case "freeswitch":
		cl.account, cl.device = "domain_name", "user_name"
	default:
		cl.preset = "recpol"
		cl.account, cl.device, cl.network = "recpol_account", "recpol_device", "recpol_network"
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&cl.account, c.Account}, {&cl.device, c.Device}, {&cl.owner, c.Owner}, {&cl.network, c.Network}} {
		if o.v != "" {
			*o.dst = strings.ToLower(o.v)
		}
	}
	return cl
}

// classify returns the leg's class once the variables it needs are known.
// vars are keyed by lower-case name; headers gives the leg's latest event
// headers (channel name, for gateways).
func (cl classifier) classify(vars map[string]string, channelName string) (legClass, bool) {
	acct := vars[cl.account]
	if acct == "" {
		return legClass{}, false
	}
	c := legClass{account: acct}
	switch cl.preset {
	case "kazoo":
		rt := vars["ecallmgr_resource-type"]
		if rt == "offnet-origination" || rt == "offnet-termination" || vars["ecallmgr_inception"] != "" {
			c.network = table.Offnet
		} else {
			c.network = table.Onnet
			c.device = vars[cl.device]
		}
	case "freeswitch":
		if strings.HasPrefix(channelName, "sofia/gateway/") || vars["sip_gateway_name"] != "" || vars[cl.device] == "" {
			c.network = table.Offnet
		} else {
			c.network = table.Onnet
			c.device = vars[cl.device]
		}
	default:
		switch vars[cl.network] {
		case "onnet":
			c.network = table.Onnet
			c.device = vars[cl.device]
		case "offnet":
			c.network = table.Offnet
			// A device forwarded to the PSTN keeps its id: a callee leg of
			// that device routed offnet.
			c.device = vars[cl.device]
		default:
			return legClass{}, false
		}
	}
	if cl.network != "" && cl.preset != "recpol" {
		switch vars[cl.network] {
		case "onnet":
			c.network = table.Onnet
		case "offnet":
			c.network = table.Offnet
		}
	}
	return c, true
}
