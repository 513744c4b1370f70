package simulate

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/table"
)

// This file restates SPEC 2.2 and 2.3 naively, straight from a random
// policy, and checks the simulator (compiler, table and tableDecide) against it.

var (
	dirKeys = []string{"inbound", "outbound"}
	netKeys = []string{"onnet", "offnet"}
	// fields in settings order; values are CUE literals.
	fieldNames = []string{"enabled", "format", "method", "record_min_sec", "record_on_answer",
		"record_on_bridge", "record_sample_rate", "time_limit", "url", "stereo", "announce", "announce_to"}
	fieldValues = map[string][]string{
		"enabled":            {"true", "false"},
		"format":             {`"mp3"`, `"wav"`},
		"method":             {`"put"`, `"post"`},
		"record_min_sec":     {"0", "1", "4"},
		"record_on_answer":   {"true", "false"},
		"record_on_bridge":   {"true", "false"},
		"record_sample_rate": {"8000", "16000", "48000"},
		"time_limit":         {"5", "60", "3600"},
		"url":                {`"https://rec.example.com/a"`, `"http://10.0.0.1/b"`},
		"stereo":             {"true", "false"},
		"announce":           {`"tone"`, `"/srv/consent.wav"`, `""`},
		"announce_to":        {`"both"`, `"aleg"`, `"bleg"`},
	}
	builtin = map[string]string{"enabled": "false", "format": `"mp3"`, "method": `"put"`, "record_min_sec": "0",
		"record_on_answer": "false", "record_on_bridge": "false", "record_sample_rate": "8000", "time_limit": "10800",
		"stereo": "false", "announce_to": `"both"`}
)

// rawSettings maps a field to its CUE literal.
type rawSettings map[string]string

// rawCR maps "d.n" (d, n possibly "any") to settings.
type rawCR map[string]rawSettings

type rawDevice struct {
	owner string
	cr    rawCR
}

type rawAccount struct {
	id              string
	account, endpnt rawCR
	users           map[string]rawCR
	devices         map[string]rawDevice
	userIDs, devIDs []string
}

type rawPolicy struct {
	defaults rawSettings
	accounts []*rawAccount
}

func genSettings(r *rand.Rand, allowEnabled bool) rawSettings {
	s := rawSettings{}
	for _, f := range fieldNames {
		if f == "enabled" && !allowEnabled {
			continue
		}
		p := 0.15
		if f == "enabled" {
			p = 0.6
		}
		if r.Float64() < p {
			vs := fieldValues[f]
			s[f] = vs[r.Intn(len(vs))]
		}
	}
	return s
}

func genCR(r *rand.Rand) rawCR {
	if r.Float64() < 0.3 {
		return nil
	}
	cr := rawCR{}
	for _, d := range []string{"any", "inbound", "outbound"} {
		for _, n := range []string{"any", "onnet", "offnet"} {
			if r.Float64() < 0.25 {
				cr[d+"."+n] = genSettings(r, true)
			}
		}
	}
	return cr
}

func genPolicy(r *rand.Rand, accounts int) *rawPolicy {
	p := &rawPolicy{}
	if r.Float64() < 0.5 {
		p.defaults = genSettings(r, r.Float64() < 0.2)
	}
	for i := 0; i < accounts; i++ {
		a := &rawAccount{id: fmt.Sprintf("a%d", i), account: genCR(r), endpnt: genCR(r),
			users: map[string]rawCR{}, devices: map[string]rawDevice{}}
		for u := 0; u < r.Intn(3); u++ {
			id := fmt.Sprintf("u%d", u)
			a.users[id] = genCR(r)
			a.userIDs = append(a.userIDs, id)
		}
		for d := 0; d < r.Intn(4); d++ {
			id := fmt.Sprintf("d%d", d)
			dev := rawDevice{cr: genCR(r)}
			if len(a.userIDs) > 0 && r.Float64() < 0.7 {
				dev.owner = a.userIDs[r.Intn(len(a.userIDs))]
			}
			a.devices[id] = dev
			a.devIDs = append(a.devIDs, id)
		}
		p.accounts = append(p.accounts, a)
	}
	return p
}

func (s rawSettings) cue() string {
	var parts []string
	for _, f := range fieldNames {
		if v, ok := s[f]; ok {
			parts = append(parts, f+": "+v)
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (cr rawCR) cue() string {
	keys := make([]string, 0, len(cr))
	for k := range cr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		d, n, _ := strings.Cut(k, ".")
		parts = append(parts, fmt.Sprintf("%s: %s: %s", d, n, cr[k].cue()))
	}
	return "{" + strings.Join(parts, "\n") + "}"
}

func (p *rawPolicy) cue() string {
	var b strings.Builder
	b.WriteString("package recpol\n\n")
	if p.defaults != nil {
		fmt.Fprintf(&b, "defaults: %s\n", p.defaults.cue())
	}
	for _, a := range p.accounts {
		fmt.Fprintf(&b, "accounts: %s: {\n", a.id)
		if a.account != nil {
			fmt.Fprintf(&b, "call_recording: account: %s\n", a.account.cue())
		}
		if a.endpnt != nil {
			fmt.Fprintf(&b, "call_recording: endpoint: %s\n", a.endpnt.cue())
		}
		fmt.Fprintf(&b, "users: {}\ndevices: {}\n")
		for _, u := range a.userIDs {
			fmt.Fprintf(&b, "users: %s: {}\n", u)
			if cr := a.users[u]; cr != nil {
				fmt.Fprintf(&b, "users: %s: call_recording: %s\n", u, cr.cue())
			}
		}
		for _, d := range a.devIDs {
			dev := a.devices[d]
			fmt.Fprintf(&b, "devices: %s: {}\n", d)
			if dev.owner != "" {
				fmt.Fprintf(&b, "devices: %s: owner: %q\n", d, dev.owner)
			}
			if dev.cr != nil {
				fmt.Fprintf(&b, "devices: %s: call_recording: %s\n", d, dev.cr.cue())
			}
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// naiveScope is one scope of a resolution chain: its name for provenance
// ("device:d0", "account:a0") and its path prefix.
type naiveScope struct {
	name, prefix string
	cr           rawCR
}

// naiveResolve resolves one cell field-wise, scope-major, d.n > any.n >
// d.any > any.any within a scope, then defaults, then the built-ins.
func naiveResolve(chain []naiveScope, defaults rawSettings, d, n string) (map[string]string, map[string]string) {
	val, prov := map[string]string{}, map[string]string{}
	for _, f := range fieldNames {
		found := false
		for _, sc := range chain {
			for _, k := range []string{d + "." + n, "any." + n, d + ".any", "any.any"} {
				if v, ok := sc.cr[k][f]; ok {
					val[f], prov[f] = v, sc.name+" "+sc.prefix+k+"."+f
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if found {
			continue
		}
		if v, ok := defaults[f]; ok {
			val[f], prov[f] = v, "defaults "+f
		} else if v, ok := builtin[f]; ok {
			val[f], prov[f] = v, "builtin "+f
		}
	}
	return val, prov
}

func unquote(s string) string { return strings.Trim(s, `"`) }

func atoi(s string) int {
	var i int
	fmt.Sscan(s, &i)
	return i
}

func naiveRecording(scope, endpoint, leg, origin string, val, prov map[string]string) JSONRecording {
	r := JSONRecording{Scope: scope, Endpoint: endpoint, Leg: leg, Origin: origin,
		Settings: JSONSettings{Format: unquote(val["format"]), Method: unquote(val["method"]),
			RecordMinSec: atoi(val["record_min_sec"]), RecordOnAnswer: val["record_on_answer"] == "true",
			RecordOnBridge: val["record_on_bridge"] == "true", RecordSampleRate: atoi(val["record_sample_rate"]),
			TimeLimit: atoi(val["time_limit"]), URL: unquote(val["url"])},
		Provenance: JSONProvenance{Enabled: prov["enabled"], Format: prov["format"], Method: prov["method"],
			RecordMinSec: prov["record_min_sec"], RecordOnAnswer: prov["record_on_answer"],
			RecordOnBridge: prov["record_on_bridge"], RecordSampleRate: prov["record_sample_rate"],
			TimeLimit: prov["time_limit"], URL: prov["url"], Stereo: prov["stereo"]}}
	r.Settings.Stereo = val["stereo"] == "true"
	if a := unquote(val["announce"]); a != "" {
		r.Settings.Announce, r.Settings.AnnounceTo = a, unquote(val["announce_to"])
		r.Provenance.Announce, r.Provenance.AnnounceTo = prov["announce"], prov["announce_to"]
	}
	return r
}

// naiveCalls lists, for every call of an account in simulation order, the
// recordings SPEC 2.3 says it starts.
func naiveCalls(p *rawPolicy, a *rawAccount) []JSONCall {
	accChain := []naiveScope{{"account:" + a.id, "call_recording.account.", a.account}}
	endpointChain := func(dev string) []naiveScope {
		d := a.devices[dev]
		chain := []naiveScope{{"device:" + dev, "call_recording.", d.cr}}
		if d.owner != "" {
			chain = append(chain, naiveScope{"user:" + d.owner, "call_recording.", a.users[d.owner]})
		}
		return append(chain, naiveScope{"account:" + a.id, "call_recording.endpoint.", a.endpnt})
	}
	devs := append([]string(nil), a.devIDs...)
	sort.Strings(devs)
	users := append([]string(nil), a.userIDs...)
	sort.Strings(users)
	var froms, tos []string
	for _, d := range devs {
		froms = append(froms, "device:"+d)
		tos = append(tos, "device:"+d)
	}
	froms = append(froms, "offnet")
	for _, u := range users {
		tos = append(tos, "user:"+u)
	}
	tos = append(tos, "offnet")
	if len(p.accounts) > 1 {
		// SPEC 2.7: a call from or to another account of the platform is
		// onnet for this account, which decides on its own legs only.
		froms = append(froms, "other-account")
		tos = append(tos, "other-account")
	}
	netOf := func(party string) string {
		if party == "offnet" {
			return "offnet"
		}
		return "onnet"
	}
	var calls []JSONCall
	for _, f := range froms {
		for _, t := range tos {
			if f == "other-account" && t == "other-account" {
				continue // transit: neither end is this account's
			}
			from, to := netOf(f), netOf(t)
			recs := []JSONRecording{}
			// The account records the A-leg; a call from another account
			// reaches this account on a B-leg, its first leg of the call.
			acctLeg := "a"
			if f == "other-account" {
				acctLeg = "b"
			}
			if v, pr := naiveResolve(accChain, p.defaults, "inbound", from); v["enabled"] == "true" {
				recs = append(recs, naiveRecording("account", "", acctLeg, "inbound from "+from+" to account", v, pr))
			} else if v, pr := naiveResolve(accChain, p.defaults, "outbound", to); v["enabled"] == "true" {
				recs = append(recs, naiveRecording("account", "", acctLeg, "outbound to "+to+" from account", v, pr))
			}
			if dev, ok := strings.CutPrefix(f, "device:"); ok {
				if v, pr := naiveResolve(endpointChain(dev), p.defaults, "outbound", to); v["enabled"] == "true" {
					recs = append(recs, naiveRecording("caller", f, "a", "outbound to "+to+" from endpoint", v, pr))
				}
			}
			var ringing []string
			if dev, ok := strings.CutPrefix(t, "device:"); ok && t != f {
				ringing = []string{dev}
			}
			if u, ok := strings.CutPrefix(t, "user:"); ok {
				for _, d := range devs {
					if a.devices[d].owner == u && "device:"+d != f {
						ringing = append(ringing, d)
					}
				}
			}
			for _, d := range ringing {
				if v, pr := naiveResolve(endpointChain(d), p.defaults, "inbound", from); v["enabled"] == "true" {
					recs = append(recs, naiveRecording("callee", "device:"+d, "b", "inbound from "+from+" to endpoint", v, pr))
				}
			}
			calls = append(calls, JSONCall{From: f, To: t, Recordings: recs})
		}
	}
	return calls
}

func TestSimulatorAgreesWithNaiveModel(t *testing.T) {
	r := rand.New(rand.NewSource(20261121))
	for i := 0; i < 12; i++ {
		p := genPolicy(r, 8)
		src := p.cue()
		tbl := compile(t, src)
		res, err := Run(tbl)
		if err != nil {
			t.Fatal(err)
		}
		got := res.JSON()
		if len(got.Accounts) != len(p.accounts) {
			t.Fatalf("policy %d: %d accounts, want %d", i, len(got.Accounts), len(p.accounts))
		}
		for j, a := range p.accounts {
			want := naiveCalls(p, a)
			if diff := cmp.Diff(want, got.Accounts[j].Calls); diff != "" {
				t.Fatalf("policy %d account %s (-naive +simulated):\n%s\npolicy:\n%s", i, a.id, diff, src)
			}
		}
	}
	_ = table.FormatVersion
}
