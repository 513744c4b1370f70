package classify

import (
	"regexp"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/table"
)

// The accounts, devices and owners of the cases below: KAZOO ids are 32 hex.
const (
	acme   = "4c1f0a0b2d6e4f7a8b9c0d1e2f3a4b5c" // the caller's account
	beta   = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b" // another account of the platform
	dev1   = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"
	owner1 = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
)

// legCase is the complete set of variables a real deployment sets on one
// leg, and what the leg is once they are all there.
type legCase struct {
	name    string
	preset  string
	channel string
	vars    map[string]string
	want    Class
	// provisionalNetwork: some incomplete subsets read with another network
	// than the final one (documented on Classify); the account and device
	// of any answer must still be right.
	provisionalNetwork bool
}

// realLegs are realistic legs of each preset, with the variables (lower
// case, no variable_ prefix) the systems set on them; see the citations in
// classify.go. Each keeps to 8 variables so that every order can be fed.
var realLegs = []legCase{
	// KAZOO: a registered device calls. registrar's create_ccvs/1 puts its
	// CCVs on the channel through the directory; no Inception.
	{
		name: "kazoo registered device A-leg", preset: PresetKazoo, channel: "sofia/sipinterface_1/user_k3x9@acme.sip.example.com",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_authorizing-id": dev1, "ecallmgr_authorizing-type": "device",
			"ecallmgr_owner-id": owner1, "ecallmgr_realm": "acme.sip.example.com", "ecallmgr_username": "user_k3x9",
			"ecallmgr_call-interaction-id": "63812345678-3f2a9c1e", "direction": "inbound",
		},
		want: Class{Account: acme, Device: dev1, Owner: owner1, Network: table.Onnet},
	},
	// KAZOO 4.0 kapps_util account_ccvs_from_ip_auth: Inception on-net.
	{
		name: "kazoo IP-authenticated device A-leg, Inception on-net", preset: PresetKazoo, channel: "sofia/sipinterface_1/2001@10.0.0.5",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_owner-id": owner1, "ecallmgr_authorizing-id": dev1,
			"ecallmgr_inception": "on-net", "ecallmgr_authorizing-type": "device", "direction": "inbound",
		},
		want: Class{Account: acme, Device: dev1, Owner: owner1, Network: table.Onnet},
	},
	{
		name: "kazoo IP-authenticated device, default type anonymous", preset: PresetKazoo, channel: "sofia/sipinterface_1/2001@10.0.0.5",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_authorizing-id": dev1,
			"ecallmgr_inception": "on-net", "ecallmgr_authorizing-type": "anonymous", "direction": "inbound",
		},
		want: Class{Account: acme, Device: dev1, Network: table.Onnet},
	},
	{
		name: "kazoo IP-authenticated trunkstore PBX (sys_info) is no device", preset: PresetKazoo, channel: "sofia/sipinterface_1/2001@10.0.0.6",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_authorizing-id": "ts0000000000000000000000000000ff",
			"ecallmgr_inception": "on-net", "ecallmgr_authorizing-type": "sys_info", "direction": "inbound",
		},
		want: Class{Account: acme, Network: table.Onnet},
	},
	// stepswitch_inbound: a carrier's call to a DID of the account.
	{
		name: "kazoo carrier inbound A-leg", preset: PresetKazoo, channel: "sofia/sipinterface_1/+14155550100@203.0.113.9",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_inception": "+14155550100@203.0.113.9",
			"ecallmgr_resource-type": "offnet-origination", "ecallmgr_resource-id": "c0ffee00c0ffee00c0ffee00c0ffee00",
			"ecallmgr_global-resource": "true", "ecallmgr_authorizing-type": "resource",
			"ecallmgr_e164-destination": "+14155550100", "direction": "inbound",
		},
		want: Class{Account: acme, Network: table.Offnet},
	},
	{
		name: "kazoo 3.x carrier inbound, Inception off-net", preset: PresetKazoo, channel: "sofia/sipinterface_1/+14155550100@203.0.113.9",
		vars: map[string]string{"ecallmgr_account-id": acme, "ecallmgr_inception": "off-net", "direction": "inbound"},
		want: Class{Account: acme, Network: table.Offnet},
	},
	// stepswitch_resources/stepswitch_bridge: the leg to a carrier. A
	// restricted caller's Authorizing-ID and Owner-ID ride along
	// (cf_resources), without Authorizing-Type: they are not this leg's
	// device.
	{
		name: "kazoo carrier outbound leg", preset: PresetKazoo, channel: "sofia/sipinterface_1/+14155550199@198.51.100.20",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_resource-type": "offnet-termination",
			"ecallmgr_resource-id": "c0ffee00c0ffee00c0ffee00c0ffee00", "ecallmgr_global-resource": "false",
			"ecallmgr_authorizing-id": dev1, "ecallmgr_owner-id": owner1,
			"ecallmgr_e164-destination": "+14155550199", "is_outbound": "true",
		},
		want: Class{Account: acme, Network: table.Offnet},
	},
	// kz_endpoint maybe_set_call_forward: Authorizing-Type device and the
	// device's id on the leg that leaves for the carrier.
	{
		name: "kazoo device forwarded offnet", preset: PresetKazoo, channel: "sofia/sipinterface_1/+14155550123@198.51.100.20",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_resource-type": "offnet-termination",
			"ecallmgr_authorizing-type": "device", "ecallmgr_authorizing-id": dev1, "ecallmgr_owner-id": owner1,
			"ecallmgr_call-forward": "true", "ecallmgr_resource-id": "c0ffee00c0ffee00c0ffee00c0ffee00", "is_outbound": "true",
		},
		want:               Class{Account: acme, Device: dev1, Owner: owner1, Network: table.Offnet},
		provisionalNetwork: true,
	},
	// stepswitch_local_extension: acme calls beta's number 5001. The -a half
	// keeps the caller's bridge-level CCVs and carries the Export-Loopback-
	// ones for the -b half (research §5.1).
	{
		name: "kazoo loopback -a half to another account", preset: PresetKazoo, channel: "loopback/5001-a",
		vars: map[string]string{
			"ecallmgr_account-id": acme, "ecallmgr_resource-type": "onnet-termination", "ecallmgr_resource-id": beta,
			"export-loopback-ecallmgr_account-id": beta, "export-loopback-ecallmgr_inception": "5001@beta.sip.example.com",
			"export-loopback-ecallmgr_inception-account-id": acme,
			"export-loopback-ecallmgr_resource-type":        "onnet-origination", "loopback_leg": "A",
		},
		want: Class{Account: acme, Network: table.Onnet},
	},
	// The -b half once mod_kazoo's kz_tweaks_handle_loopback (or ecallmgr's
	// ecallmgr_fs_loopback:filter) has replaced its ecallmgr_ variables.
	{
		name: "kazoo loopback -b half from another account", preset: PresetKazoo, channel: "loopback/5001-b",
		vars: map[string]string{
			"ecallmgr_account-id": beta, "ecallmgr_inception": "5001@beta.sip.example.com",
			"ecallmgr_inception-account-id": acme, "ecallmgr_resource-type": "onnet-origination",
			"ecallmgr_from-uri": "sip:+14155550100@acme.sip.example.com", "loopback_leg": "B",
			"other_loopback_leg_uuid": "5b1c7e2a-0000-4000-8000-00000000000a", "direction": "inbound",
		},
		want: Class{Account: beta, Network: table.Onnet},
	},
	// kazoo 3.x/4.0 stepswitch_local_extension exported only Inception.
	{
		name: "kazoo 4.0 loopback -b half, Inception only", preset: PresetKazoo, channel: "loopback/5001-b",
		vars: map[string]string{
			"ecallmgr_account-id": beta, "ecallmgr_inception": "5001@beta.sip.example.com",
			"loopback_leg": "B", "direction": "inbound",
		},
		want: Class{Account: beta, Network: table.Onnet},
	},

	// FreeSWITCH: a registered user calls (sofia_reg_parse_auth), then its
	// dialplan bridges user/1002@acme.example, which puts dialed_user and
	// dialed_domain (the callee's) on this caller leg too.
	{
		name: "freeswitch registered user A-leg", preset: PresetFreeSWITCH, channel: "sofia/internal/1001@acme.example",
		vars: map[string]string{
			"user_name": "1001", "domain_name": "acme.example", "sip_auth_username": "1001", "sip_auth_realm": "acme.example",
			"number_alias": "1001", "direction": "inbound", "dialed_user": "1002", "dialed_domain": "acme.example",
		},
		want:               Class{Account: "acme.example", Device: "1001", Network: table.Onnet},
		provisionalNetwork: true,
	},
	// The callee leg of user/1002@acme.example (mod_dptools
	// user_outgoing_channel): no user_name/domain_name on it.
	{
		name: "freeswitch user/ B-leg", preset: PresetFreeSWITCH, channel: "sofia/internal/1002@192.0.2.10:5060",
		vars: map[string]string{
			"dialed_user": "1002", "dialed_domain": "acme.example", "presence_id": "1002@acme.example",
			"sip_invite_domain": "acme.example", "is_outbound": "true", "direction": "outbound",
			"originator": "7aa49fb7-cb15-45cc-a528-ca496e9ecad2",
		},
		want: Class{Account: "acme.example", Device: "1002", Network: table.Onnet},
	},
	{
		name: "freeswitch user/ B-leg to another domain", preset: PresetFreeSWITCH, channel: "sofia/internal/2001@192.0.2.11:5060",
		vars: map[string]string{
			"dialed_user": "2001", "dialed_domain": "beta.example", "is_outbound": "true", "direction": "outbound",
		},
		want: Class{Account: "beta.example", Device: "2001", Network: table.Onnet},
	},
	// A carrier's call through the public profile, bridged to a user: the
	// dialplan set domain_name; dialed_user is the callee, not this leg.
	{
		name: "freeswitch PSTN A-leg bridged to a user", preset: PresetFreeSWITCH, channel: "sofia/external/+14155550100@198.51.100.7",
		vars: map[string]string{
			"direction": "inbound", "domain_name": "acme.example", "sip_from_user": "+14155550100",
			"dialed_user": "1002", "dialed_domain": "acme.example",
		},
		want: Class{Account: "acme.example", Network: table.Offnet},
	},
	{
		name: "freeswitch gateway leg", preset: PresetFreeSWITCH, channel: "sofia/gateway/carrier1/+14155550199",
		vars: map[string]string{
			"sip_gateway_name": "carrier1", "is_outbound": "true", "direction": "outbound", "domain_name": "acme.example",
		},
		want: Class{Account: "acme.example", Network: table.Offnet},
	},
	// A user whose directory dial-string goes out a gateway: the device
	// forwarded offnet keeps its id.
	{
		name: "freeswitch user/ B-leg through a gateway", preset: PresetFreeSWITCH, channel: "sofia/gateway/carrier1/+14155550123",
		vars: map[string]string{
			"dialed_user": "1003", "dialed_domain": "acme.example", "sip_gateway_name": "carrier1",
			"is_outbound": "true", "direction": "outbound",
		},
		want: Class{Account: "acme.example", Device: "1003", Network: table.Offnet},
	},

	// recpol: the dialplan sets recpol_*.
	{
		name: "recpol onnet caller", preset: PresetRecpol, channel: "sofia/internal/d1@127.0.0.1",
		vars: map[string]string{"recpol_account": "acme", "recpol_device": "d1", "recpol_network": "onnet", "direction": "inbound"},
		want: Class{Account: "acme", Device: "d1", Network: table.Onnet},
	},
	{
		name: "recpol device forwarded offnet", preset: PresetRecpol, channel: "sofia/external/+14155550123@127.0.0.1",
		vars: map[string]string{"recpol_account": "acme", "recpol_device": "d1", "recpol_network": "offnet"},
		want: Class{Account: "acme", Device: "d1", Network: table.Offnet},
	},
}

func TestRealLegs(t *testing.T) {
	for _, tc := range realLegs {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Must(Config{Preset: tc.preset}).Classify(tc.vars, tc.channel)
			if !ok {
				t.Fatalf("Classify = not yet, want %+v", tc.want)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEveryOrder feeds each real leg's variables one at a time, in every
// order, asking after each. The final class must be the leg's; every answer
// on the way must be the answer for that set of variables however it was
// reached; no answer may name another account or another device (or
// owner); and, unless the case is documented as provisional, no answer may
// have another network.
func TestEveryOrder(t *testing.T) {
	for _, tc := range realLegs {
		t.Run(tc.name, func(t *testing.T) {
			cl := Must(Config{Preset: tc.preset})
			keys := make([]string, 0, len(tc.vars))
			for k := range tc.vars {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if len(keys) > 8 {
				t.Fatalf("%d variables: keep a case to 8", len(keys))
			}
			// bySet is the answer for each subset (a bit mask of keys),
			// computed on a fresh map.
			type answer struct {
				c  Class
				ok bool
			}
			bySet := map[uint]answer{}
			fresh := func(mask uint) answer {
				if a, ok := bySet[mask]; ok {
					return a
				}
				vars := map[string]string{}
				for i, k := range keys {
					if mask&(1<<i) != 0 {
						vars[k] = tc.vars[k]
					}
				}
				c, ok := cl.Classify(vars, tc.channel)
				bySet[mask] = answer{c, ok}
				return bySet[mask]
			}
			order := make([]int, len(keys))
			for i := range order {
				order[i] = i
			}
			n := 0
			permute(order, func(order []int) {
				n++
				vars := map[string]string{}
				var mask uint
				for step, i := range order {
					vars[keys[i]] = tc.vars[keys[i]]
					mask |= 1 << i
					got, ok := cl.Classify(vars, tc.channel)
					if want := fresh(mask); ok != want.ok || got != want.c {
						t.Fatalf("order %v, step %d: %+v %v, but the same set read alone gives %+v %v", names(keys, order), step, got, ok, want.c, want.ok)
					}
					if !ok {
						continue
					}
					if got.Account != tc.want.Account ||
						(got.Device != "" && got.Device != tc.want.Device) ||
						(got.Owner != "" && got.Owner != tc.want.Owner) {
						t.Fatalf("after %v: %+v names another account or device than %+v", names(keys, order[:step+1]), got, tc.want)
					}
					if got.Network != tc.want.Network && !tc.provisionalNetwork {
						t.Fatalf("after %v: network %v, final %v", names(keys, order[:step+1]), got.Network, tc.want.Network)
					}
				}
				got, ok := cl.Classify(vars, tc.channel)
				if !ok || got != tc.want {
					t.Fatalf("order %v: final %+v %v, want %+v", names(keys, order), got, ok, tc.want)
				}
			})
			if want := factorial(len(keys)); n != want {
				t.Fatalf("fed %d orders, want %d", n, want)
			}
		})
	}
}

// permute calls f with every permutation of a (Heap's algorithm).
func permute(a []int, f func([]int)) {
	var gen func(k int)
	gen = func(k int) {
		if k <= 1 {
			f(a)
			return
		}
		for i := 0; i < k-1; i++ {
			gen(k - 1)
			if k%2 == 0 {
				a[i], a[k-1] = a[k-1], a[i]
			} else {
				a[0], a[k-1] = a[k-1], a[0]
			}
		}
		gen(k - 1)
	}
	gen(len(a))
}

func factorial(n int) int {
	f := 1
	for i := 2; i <= n; i++ {
		f *= i
	}
	return f
}

func names(keys []string, order []int) []string {
	out := make([]string, len(order))
	for i, j := range order {
		out[i] = keys[j]
	}
	return out
}

// TestIncomplete: sets that do not say yet what the leg is.
func TestIncomplete(t *testing.T) {
	tests := []struct {
		name    string
		preset  string
		channel string
		vars    map[string]string
		want    Class
		ok      bool
	}{
		// KAZOO: a missing Inception means onnet only once the leg's CCVs
		// are there; Account-ID alone (or with Authorizing-ID) is not yet.
		{"kazoo Account-ID alone", PresetKazoo, "sofia/sipinterface_1/x@y", map[string]string{"ecallmgr_account-id": acme}, Class{}, false},
		{"kazoo Account-ID and Authorizing-ID", PresetKazoo, "sofia/sipinterface_1/x@y",
			map[string]string{"ecallmgr_account-id": acme, "ecallmgr_authorizing-id": dev1, "ecallmgr_owner-id": owner1}, Class{}, false},
		{"kazoo no Account-ID", PresetKazoo, "sofia/sipinterface_1/x@y",
			map[string]string{"ecallmgr_authorizing-id": dev1, "ecallmgr_authorizing-type": "device"}, Class{}, false},
		// Account-ID seen before Inception: the type alone says a device
		// leg, onnet; an Inception that arrives later makes it offnet.
		{"kazoo Account-ID and Authorizing-Type before Inception", PresetKazoo, "sofia/sipinterface_1/x@y",
			map[string]string{"ecallmgr_account-id": acme, "ecallmgr_authorizing-type": "device", "ecallmgr_authorizing-id": dev1},
			Class{Account: acme, Device: dev1, Network: table.Onnet}, true},
		{"kazoo Inception arrived", PresetKazoo, "sofia/sipinterface_1/x@y",
			map[string]string{"ecallmgr_account-id": acme, "ecallmgr_authorizing-type": "device", "ecallmgr_authorizing-id": dev1, "ecallmgr_inception": "+14155550100@203.0.113.9"},
			Class{Account: acme, Network: table.Offnet}, true},
		// freeswitch: a callee leg with one of dialed_user/dialed_domain.
		{"freeswitch dialed_domain without dialed_user", PresetFreeSWITCH, "sofia/internal/1002@192.0.2.10",
			map[string]string{"dialed_domain": "acme.example", "is_outbound": "true"}, Class{}, false},
		{"freeswitch dialed_user without dialed_domain", PresetFreeSWITCH, "sofia/internal/1002@192.0.2.10",
			map[string]string{"dialed_user": "1002", "direction": "outbound", "domain_name": "other.example"}, Class{}, false},
		// Without is_outbound/direction a leg is not taken for a callee:
		// dialed_user may be a caller's callee.
		{"freeswitch dialed_user, direction unknown", PresetFreeSWITCH, "sofia/internal/1002@192.0.2.10",
			map[string]string{"dialed_user": "1002", "dialed_domain": "acme.example"}, Class{}, false},
		{"freeswitch user_name without domain_name", PresetFreeSWITCH, "sofia/internal/1001@acme.example",
			map[string]string{"user_name": "1001", "direction": "inbound"}, Class{}, false},
		{"freeswitch gateway leg without account", PresetFreeSWITCH, "sofia/gateway/carrier1/+14155550199",
			map[string]string{"sip_gateway_name": "carrier1", "is_outbound": "true"}, Class{}, false},
		{"recpol no network yet", PresetRecpol, "", map[string]string{"recpol_account": "acme", "recpol_device": "d1"}, Class{}, false},
		{"recpol nothing", PresetRecpol, "", map[string]string{}, Class{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Must(Config{Preset: tc.preset}).Classify(tc.vars, tc.channel)
			if ok != tc.ok {
				t.Fatalf("Classify ok = %v, want %v (%+v)", ok, tc.ok, got)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConfig: variable names given in the configuration.
func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		channel string
		vars    map[string]string
		want    Class
		ok      bool
	}{
		{"recpol custom names", Config{Preset: PresetRecpol, Account: "X_Tenant", Device: "X_Phone", Owner: "X_Owner"}, "",
			map[string]string{"x_tenant": "acme", "x_phone": "p1", "x_owner": "u1", "recpol_network": "onnet"},
			Class{Account: "acme", Device: "p1", Owner: "u1", Network: table.Onnet}, true},
		{"kazoo network override", Config{Preset: PresetKazoo, Network: "X_Net"}, "sofia/sipinterface_1/x@y",
			map[string]string{"ecallmgr_account-id": acme, "ecallmgr_resource-type": "offnet-origination", "x_net": "onnet"},
			Class{Account: acme, Network: table.Onnet}, true},
		{"freeswitch account override wins over dialed_domain", Config{Preset: PresetFreeSWITCH, Account: "X_Tenant"}, "sofia/internal/1002@192.0.2.10",
			map[string]string{"dialed_user": "1002", "dialed_domain": "acme.example", "is_outbound": "true", "x_tenant": "t9"},
			Class{Account: "t9", Device: "1002", Network: table.Onnet}, true},
		{"freeswitch owner variable", Config{Preset: PresetFreeSWITCH, Owner: "X_Owner"}, "sofia/internal/1001@acme.example",
			map[string]string{"user_name": "1001", "domain_name": "acme.example", "x_owner": "alice"},
			Class{Account: "acme.example", Device: "1001", Owner: "alice", Network: table.Onnet}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Must(tc.cfg).Classify(tc.vars, tc.channel)
			if ok != tc.ok {
				t.Fatalf("Classify ok = %v, want %v (%+v)", ok, tc.ok, got)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		preset string
		want   string
		err    bool
	}{
		{"", PresetRecpol, false},
		{PresetRecpol, PresetRecpol, false},
		{PresetKazoo, PresetKazoo, false},
		{PresetFreeSWITCH, PresetFreeSWITCH, false},
		{"asterisk", "", true},
	}
	for _, tc := range tests {
		cl, err := New(Config{Preset: tc.preset})
		if (err != nil) != tc.err {
			t.Errorf("New(%q) error = %v, want error %v", tc.preset, err, tc.err)
			continue
		}
		if got := cl.Preset(); got != tc.want {
			t.Errorf("New(%q).Preset() = %q, want %q", tc.preset, got, tc.want)
		}
	}
}

// TestRecordingIDsVar: the variable name reaches uuid_setvar, so it must be
// one token of letters, digits, '_' and '-'.
func TestRecordingIDsVar(t *testing.T) {
	safe := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	tests := []struct {
		preset, want string
	}{
		{PresetRecpol, "recpol_recording_ids"},
		{PresetFreeSWITCH, "recpol_recording_ids"},
		{PresetKazoo, "ecallmgr_Media-Recording-ID"},
	}
	for _, tc := range tests {
		got := Must(Config{Preset: tc.preset}).RecordingIDsVar()
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: RecordingIDsVar (-want +got):\n%s", tc.preset, diff)
		}
		if !safe.MatchString(got) {
			t.Errorf("%s: RecordingIDsVar %q is not a safe token", tc.preset, got)
		}
	}
}

func TestInteractionID(t *testing.T) {
	tests := []struct {
		name   string
		preset string
		vars   map[string]string
		want   string
	}{
		{"kazoo ecallmgr CCV", PresetKazoo, map[string]string{"ecallmgr_call-interaction-id": "63812345678-3f2a9c1e"}, "63812345678-3f2a9c1e"},
		{"kazoo mod_kazoo plain variable", PresetKazoo, map[string]string{"call-interaction-id": "63812345679-aaaaaaaa"}, "63812345679-aaaaaaaa"},
		{"kazoo both: the CCV", PresetKazoo, map[string]string{"ecallmgr_call-interaction-id": "63812345678-3f2a9c1e", "call-interaction-id": "63812345679-aaaaaaaa"}, "63812345678-3f2a9c1e"},
		{"kazoo none", PresetKazoo, map[string]string{}, ""},
		{"freeswitch none", PresetFreeSWITCH, map[string]string{"call-interaction-id": "x"}, ""},
		{"recpol none", PresetRecpol, map[string]string{"ecallmgr_call-interaction-id": "x"}, ""},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, Must(Config{Preset: tc.preset}).InteractionID(tc.vars)); diff != "" {
			t.Errorf("%s: InteractionID (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestLoopbackHalf(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		channel string
		want    bool
	}{
		{"-a by name", nil, "loopback/5001-a", true},
		{"-b by name", nil, "loopback/beta-5001-b", true},
		{"-b by loopback_leg", map[string]string{"loopback_leg": "B"}, "", true},
		{"-a by loopback_leg", map[string]string{"loopback_leg": "A"}, "sofia/internal/x", true},
		{"bowout parent name is no half", nil, "loopback/7777/", false},
		{"sofia leg", map[string]string{"direction": "inbound"}, "sofia/internal/1001@acme.example", false},
	}
	for _, tc := range tests {
		if got := LoopbackHalf(tc.vars, tc.channel); got != tc.want {
			t.Errorf("%s: LoopbackHalf = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReads: a leg's class and interaction id are functions of the
// variables Reads names: keeping only those (as the call state machine
// does) changes nothing, for every real leg.
func TestReads(t *testing.T) {
	for _, tc := range realLegs {
		t.Run(tc.name, func(t *testing.T) {
			cl := Must(Config{Preset: tc.preset})
			kept := map[string]string{}
			for _, n := range cl.Reads() {
				if v, ok := tc.vars[n]; ok {
					kept[n] = v
				}
			}
			want, wantOK := cl.Classify(tc.vars, tc.channel)
			got, gotOK := cl.Classify(kept, tc.channel)
			if gotOK != wantOK || got != want {
				t.Errorf("Classify on the read variables = %+v, %v; on all = %+v, %v (Reads %v)", got, gotOK, want, wantOK, cl.Reads())
			}
			if a, b := cl.InteractionID(kept), cl.InteractionID(tc.vars); a != b {
				t.Errorf("InteractionID on the read variables = %q, on all = %q", a, b)
			}
		})
	}
}
