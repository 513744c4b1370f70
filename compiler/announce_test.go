package compiler_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// TestCheckAnnounce holds the rules for what an announce may be: it goes on
// an event-socket command line (uuid_broadcast <uuid> <media> <leg>).
func TestCheckAnnounce(t *testing.T) {
	tests := []struct {
		in   string
		want string // a part of the message; "" for valid
	}{
		{"", ""},
		{"tone", ""},
		{"/usr/share/freeswitch/sounds/en/us/callie/ivr/8000/ivr-recording_started.wav", ""},
		{"/srv/consent+en_GB-v2.mp3", ""},
		{"tone_stream://%(500,0,1000)", ""},
		{"tone_stream://L=3;%(100,100,350,440)", ""},
		{"Tone", "absolute path"},
		{"consent.wav", "absolute path"},
		{"sounds/consent.wav", "absolute path"},
		{"/srv/", "absolute path"},
		{"/", "absolute path"},
		{"//srv/x.wav", "absolute path"},
		{"http://h/consent.wav", "absolute path"},
		{"tone_stream://", "tone spec"},
		{"tone_stream://%(500,0,1000)!x", "tone spec"},
		{"/srv/consent file.wav", "whitespace"},
		{"/srv/consent.wav\r\nbgapi originate", "whitespace or control"},
		{"/srv/consent.wav\x00", "control"},
		{"/srv/consent\t.wav", "whitespace"},
		{`/srv/"consent".wav`, "quotes"},
		{"/srv/'consent'.wav", "quotes"},
		{"/srv/`consent`.wav", "quotes"},
		{"{absolute_codec_string=PCMU}/srv/consent.wav", "braces"},
		{"/srv/[x].wav", "braces"},
		{"$${sounds_dir}/consent.wav", "braces"},
		{"$sounds_dir/consent.wav", "variables"},
		{"/srv/../etc/passwd", `".."`},
		{"/srv/consent..wav", `".."`},
		{"tone_stream://%(500,0,1000)..", `".."`},
		{"playback::/srv/consent.wav", `"::"`},
		{"/srv/" + strings.Repeat("a", 251), "at most 255"},
		{"/srv/" + strings.Repeat("a", 250), ""},
	}
	for _, tc := range tests {
		got := compiler.CheckAnnounce(tc.in)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("CheckAnnounce(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestVetAnnounce checks that vet reports an unsafe announce wherever a
// recording's settings live, at the value's position, and that an
// announce_to outside its enum is a schema error.
func TestVetAnnounce(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string // code path message-part at line:col
	}{
		{"defaults", `defaults: announce: "consent.wav"`,
			[]string{`announce defaults.announce: announce "consent.wav" must be an absolute path at 3:21`}},
		{"account cell", `accounts: a: call_recording: account: inbound: offnet: announce: "/srv/a b.wav"`,
			[]string{`announce accounts.a.call_recording.account.inbound.offnet.announce: announce "/srv/a b.wav" must not contain whitespace at 3:66`}},
		{"endpoint defaults", `accounts: a: call_recording: endpoint: any: any: announce: "/srv/../x.wav"`,
			[]string{`announce accounts.a.call_recording.endpoint.any.any.announce: announce "/srv/../x.wav" must not contain ".." at 3:60`}},
		{"user", `accounts: a: users: u: call_recording: any: onnet: announce: "$${sounds_dir}/x.wav"`,
			[]string{`announce accounts.a.users.u.call_recording.any.onnet.announce: announce "$${sounds_dir}/x.wav" must not contain braces at 3:62`}},
		{"device", `accounts: a: devices: d: call_recording: outbound: any: announce: "/srv/x.wav'"`,
			[]string{`announce accounts.a.devices.d.call_recording.outbound.any.announce: announce "/srv/x.wav'" must not contain quotes at 3:67`}},
		{"callflow record_call", `accounts: a: callflows: c: {numbers: ["1"], actions: [{module: "record_call", data: announce: "playback::/x"}]}`,
			[]string{`announce accounts.a.callflows.c.actions[0].data.announce: announce "playback::/x" must not contain "::" at 3:95`}},
		{"metaflow record_call", `accounts: a: metaflows: numbers: "71": {module: "record_call", data: {action: "start", announce: "tone_stream://%(1,2,3) x"}}`,
			[]string{`announce accounts.a.metaflows.numbers."71".data.announce: announce "tone_stream://%(1,2,3) x" must not contain whitespace at 3:98`}},
		{"announce_to outside its enum", `accounts: a: devices: d: call_recording: any: any: announce_to: "caller"`,
			[]string{`schema accounts.a.devices.d.call_recording.any.any.announce_to`}},
		{"valid everywhere", `defaults: {stereo: true, announce: "tone"}
accounts: a: {
	call_recording: account: any: any: {announce: "/srv/consent.wav", announce_to: "aleg"}
	devices: d: call_recording: any: any: {announce: "", stereo: false}
	callflows: c: {numbers: ["1"], actions: [{module: "record_call", data: {announce: "tone_stream://%(500,0,1000)", announce_to: "bleg", stereo: true}}]}
	metaflows: numbers: "71": {module: "record_call", data: {action: "start", announce: "tone"}}
}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "policy.cue", Data: []byte("package recpol\n\n" + tc.policy + "\n")}})
			var got []string
			for _, d := range res.Diagnostics {
				got = append(got, d.Code+" "+d.Path+": "+d.Message+" at "+strconv.Itoa(d.Line)+":"+strconv.Itoa(d.Column))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("diagnostics:\n%s\nwant %d like:\n%s", strings.Join(got, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			for i, w := range tc.want {
				code, rest, _ := strings.Cut(w, " ")
				path, msgAt, _ := strings.Cut(rest, ": ")
				if !strings.HasPrefix(got[i], code+" "+path) {
					t.Errorf("diagnostic %d = %s, want code and path %s %s", i, got[i], code, path)
				}
				if msgAt == "" {
					continue
				}
				msg, at, _ := strings.Cut(msgAt, " at ")
				if !strings.Contains(got[i], msg) || !strings.HasSuffix(got[i], " at "+at) {
					t.Errorf("diagnostic %d = %s\nwant %s", i, got[i], w)
				}
			}
			if (res.Table == nil) != (len(tc.want) > 0) {
				t.Errorf("table built = %v with %d errors", res.Table != nil, len(tc.want))
			}
		})
	}
}

// TestResolveStereoAnnounce checks that stereo, announce and announce_to
// resolve like every other setting: field by field, most specific scope
// first, then defaults, then the built-in values, with provenance; in
// callflow and metaflow actions from their data, then defaults.
func TestResolveStereoAnnounce(t *testing.T) {
	in, out := table.Inbound, table.Outbound
	on, off := table.Onnet, table.Offnet
	type got struct {
		Stereo                         bool
		Announce, AnnounceTo           string
		ProvStereo, ProvAnn, ProvAnnTo string
	}
	policy := `defaults: {stereo: true, announce_to: "aleg"}
accounts: a: {
	call_recording: account: inbound: offnet: {enabled: true, announce: "tone"}
	call_recording: endpoint: any: any: announce: "/srv/consent.wav"
	users: u: call_recording: inbound: any: {stereo: false, announce_to: "bleg"}
	devices: d: {owner: "u", call_recording: inbound: offnet: announce: ""}
	devices: lone: {}
	callflows: c: {numbers: ["1"], actions: [
		{module: "record_call", data: {announce: "tone_stream://%(200,0,800)", stereo: false}},
		{module: "record_caller", data: time_limit: 60},
	]}
	metaflows: numbers: "71": {module: "record_call", data: {action: "start", announce: "tone", announce_to: "both"}}
}`
	tb := compileSource(t, policy)
	a, _ := tb.Account("a")
	cellOf := func(c *table.Cell) got {
		return got{c.Settings.Stereo, c.Settings.Announce, c.Settings.AnnounceTo,
			c.Provenance.Stereo, c.Provenance.Announce, c.Provenance.AnnounceTo}
	}
	actOf := func(x table.Action) got {
		return got{x.Settings.Stereo, x.Settings.Announce, x.Settings.AnnounceTo,
			x.Provenance.Stereo, x.Provenance.Announce, x.Provenance.AnnounceTo}
	}
	tests := []struct {
		name string
		got  got
		want got
	}{
		{"account cell: its own announce, defaults stereo and announce_to",
			cellOf(cellRef{"a", "", in, off}.get(t, tb)),
			got{true, "tone", "aleg", "defaults stereo", "account:a call_recording.account.inbound.offnet.announce", "defaults announce_to"}},
		{"account cell that sets nothing: no announce, no provenance for it",
			cellOf(cellRef{"a", "", out, on}.get(t, tb)),
			got{true, "", "aleg", "defaults stereo", "", "defaults announce_to"}},
		{"device: its empty announce turns off the account endpoint's",
			cellOf(cellRef{"a", "device:d", in, off}.get(t, tb)),
			got{false, "", "bleg", "user:u call_recording.inbound.any.stereo", "device:d call_recording.inbound.offnet.announce",
				"user:u call_recording.inbound.any.announce_to"}},
		{"device, another cell: owner, then account endpoint",
			cellOf(cellRef{"a", "device:d", in, on}.get(t, tb)),
			got{false, "/srv/consent.wav", "bleg", "user:u call_recording.inbound.any.stereo",
				"account:a call_recording.endpoint.any.any.announce", "user:u call_recording.inbound.any.announce_to"}},
		{"device without owner: account endpoint and defaults",
			cellOf(cellRef{"a", "device:lone", out, off}.get(t, tb)),
			got{true, "/srv/consent.wav", "aleg", "defaults stereo", "account:a call_recording.endpoint.any.any.announce", "defaults announce_to"}},
		{"callflow record_call: its data, then defaults",
			actOf(a.Callflows[0].Actions[0]),
			got{false, "tone_stream://%(200,0,800)", "aleg", "account:a callflows.c.actions.0.data.stereo",
				"account:a callflows.c.actions.0.data.announce", "defaults announce_to"}},
		{"record_caller: defaults only",
			actOf(a.Callflows[0].Actions[1]),
			got{true, "", "aleg", "defaults stereo", "", "defaults announce_to"}},
		{"metaflow record_call",
			actOf(a.Devices["lone"].Metaflows.Numbers[0].Action),
			got{true, "tone", "both", "defaults stereo", "account:a metaflows.numbers.71.data.announce",
				"account:a metaflows.numbers.71.data.announce_to"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	// Without defaults: the built-in values.
	tb = compileSource(t, `accounts: b: devices: d: call_recording: any: any: enabled: true`)
	c := cellRef{"b", "device:d", out, off}.get(t, tb)
	if diff := cmp.Diff(got{false, "", "both", "builtin stereo", "", "builtin announce_to"}, cellOf(c)); diff != "" {
		t.Errorf("built-in values (-want +got):\n%s", diff)
	}
}
