// Package classify says what a FreeSWITCH channel is, from the point of view
// of the policy: which account it belongs to, which device (if any) it
// carries, and whether it is on the platform (onnet) or the PSTN (offnet).
//
// A leg's class is a pure function of the latest channel variables seen on
// it and its channel name (SPEC 2.7: facts arrive in any order); callers
// keep the variables and ask again whenever they change. Nothing is
// remembered between calls, so the answer for a set of variables never
// depends on the order in which they were set.
//
// While a leg's variables are incomplete the answer is one of: not yet
// (ok false), or a provisional class. A provisional class never names a
// wrong account or a wrong device (it may leave the device out), but in the
// cases listed on Classify its network can still change when the variable
// that marks the leg as crossing the platform's edge arrives. Callers take
// decisions when a leg's facts are final (SPEC 2.3 and 5), not at the first
// answer.
//
// The presets read the variables that the real systems set: recpol's own
// (recpol_account, recpol_device, recpol_network), a KAZOO cluster's ecallmgr
// custom channel variables, and a plain FreeSWITCH's directory users.
package classify

import (
	"fmt"
	"strings"

	"github.com/recpol/recpol/table"
)

// The presets.
const (
	PresetRecpol     = "recpol"
	PresetKazoo      = "kazoo"
	PresetFreeSWITCH = "freeswitch"
)

// KAZOO custom channel variables as FreeSWITCH holds them, lower case (vars
// are keyed by lower-case name). ecallmgr writes every custom channel
// variable (CCV) Key that is not in ?SPECIAL_CHANNEL_VARS as the channel
// variable "ecallmgr_<Key>": ?CHANNEL_VAR_PREFIX "ecallmgr_" in
// 2600hz/kazoo applications/ecallmgr/src/ecallmgr.hrl, applied by
// ecallmgr_util:get_fs_key/1 (applications/ecallmgr/src/ecallmgr_util.erl)
// and by ecallmgr_fs_xml:kazoo_var_to_fs_var_fold/3
// (applications/ecallmgr/src/ecallmgr_fs_xml.erl). None of the keys below
// is a special one.
const (
	// Account-ID: the account the leg belongs to. Set by registrar
	// (applications/registrar/src/reg_authn_req.erl create_ccvs/1), by
	// stepswitch for carrier legs (stepswitch_inbound.erl,
	// stepswitch_bridge.erl) and by kz_endpoint for device legs
	// (core/kazoo_endpoint/src/kz_endpoint.erl maybe_set_account_id).
	kzAccountID = "ecallmgr_account-id"
	// Authorizing-ID: the endpoint (device) the leg authenticated as or
	// rings; reg_authn_req.erl create_ccvs/1, kz_endpoint.erl
	// maybe_set_endpoint_id and maybe_set_call_forward, kapps_util.erl
	// account_ccvs_from_ip_auth (IP-authenticated devices).
	kzAuthorizingID = "ecallmgr_authorizing-id"
	// Authorizing-Type: the kind of that endpoint. "device" (the doc's
	// type), "mobile" or the default "anonymous" (reg_authn_req.erl
	// get_auth_type/1, kapps_util.erl IP auth), "resource" on a carrier's
	// inbound leg (applications/stepswitch/src/stepswitch_inbound.erl
	// add_resource_id), "sys_info" for trunkstore.
	kzAuthorizingType = "ecallmgr_authorizing-type"
	// Owner-ID: the user owning the device; reg_authn_req.erl, kz_endpoint.erl
	// maybe_set_owner_id, kapps_util.erl IP auth.
	kzOwnerID = "ecallmgr_owner-id"
	// Inception: set only on a call that came from outside the account.
	// kazoo 4.x/5.x stepswitch_inbound.erl set_inception/2 stores the
	// request URI; stepswitch_local_extension.erl exports Number@Realm to a
	// call from another account; kazoo <= 3.x used the literals "off-net" and
	// "on-net", and kapps_util.erl account_ccvs_from_ip_auth (4.0) still sets
	// "on-net" for IP-authenticated devices. kapps_call.erl inception_type/1
	// reads "undefined" as onnet and anything else as offnet.
	kzInception = "ecallmgr_inception"
	// Inception-Account-ID: the calling account on a call between two
	// accounts of the platform (stepswitch_local_extension.erl,
	// Export-Loopback-Inception-Account-ID; kapps_call.erl inter_account_id/1).
	kzInceptionAccountID = "ecallmgr_inception-account-id"
	// Resource-Type: offnet-origination (carrier to KAZOO,
	// stepswitch_inbound.erl set_resource_type/2), offnet-termination (a leg
	// to a carrier, stepswitch_resources.erl gateway CCVs), onnet-termination
	// and onnet-origination (the two loopback halves of a call to another
	// account, stepswitch_local_extension.erl).
	kzResourceType = "ecallmgr_resource-type"
	// Call-Interaction-ID as ecallmgr sets it: a CCV
	// (applications/ecallmgr/src/ecallmgr_fs_router_call.erl
	// interaction_props/3, ?CALL_INTERACTION_ID in
	// core/kazoo_stdlib/include/kz_types.hrl), read back by the cdr app as a
	// CCV.
	kzInteractionCCV = "ecallmgr_call-interaction-id"
	// Call-Interaction-ID as FreeSWITCH's mod_kazoo sets it, unprefixed:
	// INTERACTION_VARIABLE in signalwire/freeswitch
	// src/mod/event_handlers/mod_kazoo/kazoo_tweaks.c.
	kzInteractionPlain = "call-interaction-id"
)

// KazooRecordingIDsVar is the channel variable the KAZOO preset writes the
// recording ids to: KAZOO's own CCV Media-Recording-ID, which 4.x ecallmgr
// sets on the recorded channel (record_call_vars/1 in
// applications/ecallmgr/src/ecallmgr_call_command.erl, through
// ecallmgr_util:get_fs_key/1, so "ecallmgr_Media-Recording-ID"). Only
// ecallmgr_-prefixed variables reach a call event's Custom-Channel-Vars
// (custom_channel_vars_fold/2 in
// core/kazoo_documents/src/kzd_freeswitch.erl strips the prefix, giving
// "Media-Recording-ID"), and the cdr app normalizes the CDR before saving it
// (normalize/3 in applications/cdr/src/cdr_channel_destroy.erl, calling
// kz_json:normalize_jobj/1 whose normalize_key_char/1 lowers letters and
// turns '-' into '_'), so the CDR shows it as
// custom_channel_vars.media_recording_id. A plain "media_recording_id"
// channel variable has no ecallmgr_ prefix and never reaches the CDR.
//
// The name is case-sensitive as written here; in the lower-case vars map of
// a leg it appears as "ecallmgr_media-recording-id".
const KazooRecordingIDsVar = "ecallmgr_Media-Recording-ID"

// RecpolRecordingIDsVar is the channel variable the recpol and freeswitch
// presets write the recording ids to.
const RecpolRecordingIDsVar = "recpol_recording_ids"

// FreeSWITCH variables, lower case.
const (
	// user_name and domain_name: the directory user a SIP request
	// authenticated as; mod_sofia sets them (with sip_auth_username,
	// sip_auth_realm, number_alias) when it authorizes the request:
	// sofia_reg_parse_auth in signalwire/freeswitch
	// src/mod/endpoints/mod_sofia/sofia_reg.c.
	fsUserName   = "user_name"
	fsDomainName = "domain_name"
	// dialed_user and dialed_domain: a user/<user>@<domain> bridge puts them
	// in the new leg's originate variables (so the callee leg carries them
	// from its creation on) AND sets them on the calling channel:
	// user_outgoing_channel in signalwire/freeswitch
	// src/mod/applications/mod_dptools/mod_dptools.c. On a caller leg they
	// name the callee, so only an originated leg reads them.
	fsDialedUser   = "dialed_user"
	fsDialedDomain = "dialed_domain"
	// sip_gateway_name: set on a leg sent through a gateway,
	// sofia_outgoing_channel in src/mod/endpoints/mod_sofia/mod_sofia.c.
	fsGatewayName = "sip_gateway_name"
	// is_outbound: "true" on an originated (outbound) leg, set when the
	// CF_OUTBOUND flag is (switch_channel_set_flag in
	// src/switch_channel.c; sofia_outgoing_channel and mod_loopback set the
	// flag on the legs they create). direction: "inbound" or "outbound" on
	// every channel (every event of the esl-captures carries it).
	fsIsOutbound = "is_outbound"
	fsDirection  = "direction"
	// loopback_leg: "A" or "B" on the two halves of a loopback, set by
	// mod_loopback (src/mod/endpoints/mod_loopback/mod_loopback.c), whose
	// channels are named loopback/<dest>-a and loopback/<dest>-b.
	fsLoopbackLeg = "loopback_leg"
)

// Config chooses a preset and, optionally, other variable names for its
// facts. Names are case-insensitive. A name given here replaces the
// preset's own lookup of that fact.
type Config struct {
	Preset                          string // recpol (default), kazoo or freeswitch
	Account, Device, Owner, Network string // empty: the preset's
}

// Class is what a leg is.
type Class struct {
	Account string
	Device  string // empty on a leg that carries no device
	Owner   string // the device's owner, when the switch says (only with Device)
	Network table.Network
}

// Classifier classifies legs by one preset. The zero value is not usable;
// use New.
type Classifier struct {
	preset                          string
	account, device, owner, network string // variable names, lower case
	// accountSet and deviceSet say the configuration named the account or
	// device variable, which then replaces the preset's own lookup.
	accountSet, deviceSet bool
}

// New returns the classifier of c. An unknown preset is an error.
func New(c Config) (Classifier, error) {
	cl := Classifier{preset: c.Preset}
	switch c.Preset {
	case PresetKazoo:
		cl.account, cl.device, cl.owner = kzAccountID, kzAuthorizingID, kzOwnerID
	case PresetFreeSWITCH:
		cl.account, cl.device = fsDomainName, fsUserName
	case "", PresetRecpol:
		cl.preset = PresetRecpol
		cl.account, cl.device, cl.network = "recpol_account", "recpol_device", "recpol_network"
	default:
		return Classifier{}, fmt.Errorf("unknown classification preset %q (want recpol, kazoo or freeswitch)", c.Preset)
	}
	for _, o := range []struct {
		dst *string
		set *bool
		v   string
	}{{&cl.account, &cl.accountSet, c.Account}, {&cl.device, &cl.deviceSet, c.Device}, {&cl.owner, nil, c.Owner}, {&cl.network, nil, c.Network}} {
		if o.v != "" {
			*o.dst = strings.ToLower(o.v)
			if o.set != nil {
				*o.set = true
			}
		}
	}
	return cl, nil
}

// Must is New for a configuration known to be valid; it panics otherwise.
func Must(c Config) Classifier {
	cl, err := New(c)
	if err != nil {
		panic(err)
	}
	return cl
}

// Reads returns the channel variables (lower-case names) that Classify and
// InteractionID read: a leg's class is a function of these alone, so a
// caller may keep only them.
func (cl Classifier) Reads() []string {
	names := []string{cl.account, cl.device, cl.owner, cl.network, fsLoopbackLeg}
	switch cl.preset {
	case PresetKazoo:
		names = append(names, kzAuthorizingType, kzInception, kzInceptionAccountID, kzResourceType,
			kzInteractionCCV, kzInteractionPlain, fsLoopbackLeg)
	case PresetFreeSWITCH:
		names = append(names, fsUserName, fsDomainName, fsDialedUser, fsDialedDomain, fsGatewayName,
			fsIsOutbound, fsDirection)
	}
	out := names[:0]
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Preset returns the classifier's preset.
func (cl Classifier) Preset() string { return cl.preset }

// RecordingIDsVar is the channel variable the runtime appends each
// recording's id to (with uuid_setvar), so that the switch's CDR of the leg
// links to it: KazooRecordingIDsVar for KAZOO, RecpolRecordingIDsVar
// otherwise. The name holds only letters, digits, '_' and '-'.
func (cl Classifier) RecordingIDsVar() string {
	if cl.preset == PresetKazoo {
		return KazooRecordingIDsVar
	}
	return RecpolRecordingIDsVar
}

// InteractionID returns the interaction id the leg's variables carry ("" when
// the preset knows none). KAZOO: ecallmgr's CCV Call-Interaction-ID
// (ecallmgr_Call-Interaction-ID, the one its CDRs carry), else the plain
// Call-Interaction-ID mod_kazoo sets; both can exist and differ, because each
// side makes its own default.
func (cl Classifier) InteractionID(vars map[string]string) string {
	if cl.preset == PresetKazoo {
		if id := vars[kzInteractionCCV]; id != "" {
			return id
		}
		return vars[kzInteractionPlain]
	}
	return ""
}

// LoopbackHalf reports whether the leg is one half of a FreeSWITCH loopback
// (mod_loopback's loopback/<dest>-a or loopback/<dest>-b, which also carry
// loopback_leg=A|B). Nothing is recorded on a loopback half (SPEC 2.7).
func LoopbackHalf(vars map[string]string, channelName string) bool {
	return loopbackSide(vars, channelName) != ""
}

// loopbackSide returns "A" or "B" for a loopback half, "" otherwise.
func loopbackSide(vars map[string]string, channelName string) string {
	switch strings.ToUpper(vars[fsLoopbackLeg]) {
	case "A":
		return "A"
	case "B":
		return "B"
	}
	if strings.HasPrefix(channelName, "loopback/") {
		switch {
		case strings.HasSuffix(channelName, "-a"):
			return "A"
		case strings.HasSuffix(channelName, "-b"):
			return "B"
		}
	}
	return ""
}

// Classify returns the leg's class once the variables it needs are known.
// vars are keyed by lower-case name without the "variable_" prefix;
// channelName is the leg's Channel-Name.
//
// recpol: recpol_account, and recpol_network onnet or offnet; the device is
// recpol_device (kept on an offnet leg: a device forwarded to the PSTN).
//
// kazoo (account: ecallmgr_Account-ID; nothing until it is set):
//   - Resource-Type offnet-termination: a leg to a carrier, offnet. It keeps
//     the device when it carries Authorizing-Type device (or mobile) and
//     Authorizing-ID: a device forwarded offnet.
//   - Resource-Type offnet-origination: a carrier's inbound leg, offnet.
//   - Resource-Type onnet-origination or Inception-Account-ID set: the call
//     comes from another account of the platform, onnet for this account
//     (SPEC 2.7), no device of this account.
//   - Resource-Type onnet-termination: a leg to another account, onnet.
//   - Inception set to anything but "on-net": from outside the account;
//     on the -b half of a loopback (only stepswitch_local_extension exports
//     an Inception to one) from another account, onnet; otherwise from a
//     carrier, offnet.
//   - Authorizing-Type resource: a carrier's inbound leg, offnet.
//   - Inception "on-net" (IP-authenticated devices) or Authorizing-Type
//     set: a device's leg, onnet; the device is Authorizing-ID once
//     Authorizing-Type says it is one (device, mobile, or the default
//     anonymous; not sys_info, a trunkstore PBX).
//   - None of Resource-Type, Inception, Inception-Account-ID and
//     Authorizing-Type yet: not yet (ok false), because a missing Inception
//     only means onnet once the leg's CCVs are there.
//
// Provisional: a device forwarded offnet reads as an onnet device leg while
// Authorizing-Type/-ID are seen without Resource-Type (ecallmgr sets them in
// one bridge, so a real deployment does not split them).
//
// freeswitch: an originated leg (is_outbound true or direction outbound)
// that carries dialed_user and dialed_domain is a user/ bridge's callee:
// device dialed_user of account dialed_domain, onnet, or offnet when it goes
// through a gateway (the user's dial string sends it to the PSTN; it keeps
// the device). A leg carrying only one of the two is not yet known. Any other
// leg is of account domain_name; a gateway leg (sofia/gateway/... or
// sip_gateway_name) is offnet without device; a leg with user_name is onnet
// device user_name; any other leg is offnet. dialed_user on a caller leg
// names its callee and is ignored.
//
// Provisional: a registered user's leg reads as offnet while domain_name is
// seen without user_name (mod_sofia sets both when it authorizes the
// request, so a real deployment does not split them).
//
// A Network variable named in the configuration ("onnet" or "offnet")
// overrides the kazoo and freeswitch presets' network.
func (cl Classifier) Classify(vars map[string]string, channelName string) (Class, bool) {
	var (
		c  Class
		ok bool
	)
	switch cl.preset {
	case PresetKazoo:
		c, ok = cl.kazoo(vars, channelName)
	case PresetFreeSWITCH:
		c, ok = cl.freeswitch(vars, channelName)
	default:
		return cl.recpol(vars)
	}
	if !ok {
		return Class{}, false
	}
	if cl.network != "" {
		switch vars[cl.network] {
		case "onnet":
			c.Network = table.Onnet
		case "offnet":
			c.Network = table.Offnet
		}
	}
	return c, true
}

func (cl Classifier) recpol(vars map[string]string) (Class, bool) {
	acct := vars[cl.account]
	if acct == "" {
		return Class{}, false
	}
	c := Class{Account: acct, Device: vars[cl.device]}
	switch vars[cl.network] {
	case "onnet":
		c.Network = table.Onnet
	case "offnet":
		// A device forwarded to the PSTN keeps its id: a callee leg of that
		// device routed offnet.
		c.Network = table.Offnet
	default:
		return Class{}, false
	}
	if c.Device != "" && cl.owner != "" {
		c.Owner = vars[cl.owner]
	}
	return c, true
}

// withDevice sets c's device, and its owner when the preset has one.
func (cl Classifier) withDevice(c Class, vars map[string]string, device string) Class {
	c.Device = device
	if device != "" && cl.owner != "" {
		c.Owner = vars[cl.owner]
	}
	return c
}

func (cl Classifier) kazoo(vars map[string]string, channelName string) (Class, bool) {
	acct := vars[cl.account]
	if acct == "" {
		return Class{}, false
	}
	c := Class{Account: acct}
	rt := strings.ToLower(vars[kzResourceType])
	inception := vars[kzInception]
	authType := strings.ToLower(vars[kzAuthorizingType])
	authID := vars[cl.device]
	switch {
	case rt == "offnet-termination":
		c.Network = table.Offnet
		if authType == "device" || authType == "mobile" {
			c = cl.withDevice(c, vars, authID)
		}
	case rt == "offnet-origination":
		c.Network = table.Offnet
	case rt == "onnet-origination" || vars[kzInceptionAccountID] != "":
		// The Authorizing-* of a call from another account are the other
		// account's caller (and are cleared on the -b half anyway).
		c.Network = table.Onnet
	case rt == "onnet-termination":
		c.Network = table.Onnet
	case inception != "" && !strings.EqualFold(inception, "on-net"):
		if loopbackSide(vars, channelName) == "B" {
			c.Network = table.Onnet
		} else {
			c.Network = table.Offnet
		}
	case authType == "resource":
		c.Network = table.Offnet
	case inception != "" || authType != "":
		c.Network = table.Onnet
		// Every source that sets Authorizing-ID sets Authorizing-Type with it
		// (registrar, kz_endpoint, kapps_util IP auth with its default
		// "anonymous"), so the device waits for the type: a trunkstore PBX
		// (sys_info) must not read as a device meanwhile.
		switch authType {
		case "device", "mobile", "anonymous":
			c = cl.withDevice(c, vars, authID)
		}
	default:
		return Class{}, false
	}
	return c, true
}

func (cl Classifier) freeswitch(vars map[string]string, channelName string) (Class, bool) {
	originated := strings.EqualFold(vars[fsIsOutbound], "true") || strings.EqualFold(vars[fsDirection], "outbound")
	gateway := strings.HasPrefix(channelName, "sofia/gateway/") || vars[fsGatewayName] != ""
	du, dd := vars[fsDialedUser], vars[fsDialedDomain]
	if originated && (du != "" || dd != "") {
		// A user/ bridge's callee. mod_dptools sets the two together.
		if du == "" || dd == "" {
			return Class{}, false
		}
		acct, dev := dd, du
		if cl.accountSet {
			acct = vars[cl.account]
		}
		if cl.deviceSet {
			dev = vars[cl.device]
		}
		if acct == "" {
			return Class{}, false
		}
		c := cl.withDevice(Class{Account: acct, Network: table.Onnet}, vars, dev)
		if gateway || dev == "" {
			c.Network = table.Offnet
		}
		return c, true
	}
	acct := vars[cl.account]
	if acct == "" {
		return Class{}, false
	}
	c := Class{Account: acct, Network: table.Offnet}
	if dev := vars[cl.device]; dev != "" && !gateway {
		c = cl.withDevice(c, vars, dev)
		c.Network = table.Onnet
	}
	return c, true
}
