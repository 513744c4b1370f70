package eslcmd

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestString: each command renders as FreeSWITCH's mod_commands reads it,
// byte for byte.
func TestString(t *testing.T) {
	tests := []struct {
		cmd  Command
		want string
	}{
		{RecordStart{UUID: "aaaa-1", Path: "/rec/acme/r1.mp3", TimeLimit: 10800,
			Vars: []Var{{"RECORD_MIN_SEC", "2"}, {"record_sample_rate", "8000"}, {"RECORD_STEREO", "true"}}},
			"uuid_record aaaa-1 start /rec/acme/r1.mp3 10800 {RECORD_MIN_SEC=2,record_sample_rate=8000,RECORD_STEREO=true}"},
		{RecordStart{UUID: "aaaa-1", Path: "/rec/r1.wav", TimeLimit: 0}, "uuid_record aaaa-1 start /rec/r1.wav 0"},
		{Record{Op: Stop, UUID: "aaaa-1", Path: "/rec/r1.wav"}, "uuid_record aaaa-1 stop /rec/r1.wav"},
		{Record{Op: Mask, UUID: "aaaa-1", Path: "/rec/r1.wav"}, "uuid_record aaaa-1 mask /rec/r1.wav"},
		{Record{Op: Unmask, UUID: "aaaa-1", Path: "/rec/r1.wav"}, "uuid_record aaaa-1 unmask /rec/r1.wav"},
		{Record{Op: Pause, UUID: "aaaa-1", Path: "/rec/r1.wav"}, "uuid_record aaaa-1 pause /rec/r1.wav"},
		{Record{Op: Resume, UUID: "aaaa-1", Path: "/rec/r1.wav"}, "uuid_record aaaa-1 resume /rec/r1.wav"},
		{Broadcast{UUID: "aaaa-1", Media: "tone_stream://%(500,0,640)", Target: Both},
			"uuid_broadcast aaaa-1 tone_stream://%(500,0,640) both"},
		{SetVar{UUID: "aaaa-1", Name: "recpol_recording_ids", Value: "r1,r2"}, "uuid_setvar aaaa-1 recpol_recording_ids r1,r2"},
		{SetVar{UUID: "aaaa-1", Name: "recpol_recording_ids"}, "uuid_setvar aaaa-1 recpol_recording_ids "},
		{Exists{UUID: "aaaa-1"}, "uuid_exists aaaa-1"},
		{Dump{UUID: "aaaa-1"}, "uuid_dump aaaa-1 json"},
		{ShowChannels{}, "show channels as json"},
		{ModuleExists{Module: "mod_shout"}, "module_exists mod_shout"},
		{GlobalGetVar{Name: "recpol_owner"}, "global_getvar recpol_owner"},
		{GlobalSetVar{Name: "recpol_owner", Value: "rt1;1700000000000"}, "global_setvar recpol_owner=rt1;1700000000000"},
		{GlobalSetVar{Name: "recpol_owner", Value: "rt1;2", IfEqual: true, Expected: "rt2;1"},
			"global_setvar recpol_owner=rt1;2=rt2;1"},
		{GlobalSetVar{Name: "recpol_owner", IfEqual: true, Expected: "rt1;2"}, "global_setvar recpol_owner==rt1;2"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.cmd.String()); diff != "" {
			t.Errorf("%#v (-want +got):\n%s", tt.cmd, diff)
		}
		if err := tt.cmd.Validate(); err != nil {
			t.Errorf("%#v: %v", tt.cmd, err)
		}
	}
}

// TestValidateRefuses: a value that could end the command line, add an
// argument or leave its path is refused, whichever command carries it.
func TestValidateRefuses(t *testing.T) {
	const ok = "aaaa-1"
	tests := []Command{
		RecordStart{UUID: "", Path: "/rec/r1.wav"},
		RecordStart{UUID: "a b", Path: "/rec/r1.wav"},
		RecordStart{UUID: "-a", Path: "/rec/r1.wav"},
		RecordStart{UUID: strings.Repeat("a", 129), Path: "/rec/r1.wav"},
		RecordStart{UUID: ok, Path: "rec/r1.wav"},
		RecordStart{UUID: ok, Path: "/rec/../etc/passwd"},
		RecordStart{UUID: ok, Path: "/rec/a b.wav"},
		RecordStart{UUID: ok, Path: "/rec/r1.wav\nexit"},
		RecordStart{UUID: ok, Path: `/rec/"r1.wav`},
		RecordStart{UUID: ok, Path: "/rec/r1.wav", TimeLimit: -1},
		RecordStart{UUID: ok, Path: "/rec/r1.wav", Vars: []Var{{"RECORD_MIN_SEC", "2,RECORD_READ_ONLY=true"}}},
		RecordStart{UUID: ok, Path: "/rec/r1.wav", Vars: []Var{{"RECORD_MIN_SEC", "2}"}}},
		RecordStart{UUID: ok, Path: "/rec/r1.wav", Vars: []Var{{"RECORD_MIN_SEC", ""}}},
		RecordStart{UUID: ok, Path: "/rec/r1.wav", Vars: []Var{{"a=b", "1"}}},
		Record{UUID: ok, Path: "/rec/r1.wav"},
		Record{Op: Resume + 1, UUID: ok, Path: "/rec/r1.wav"},
		Record{Op: Stop, UUID: "a\r\n", Path: "/rec/r1.wav"},
		Record{Op: Mask, UUID: ok, Path: "/rec/.."},
		Broadcast{UUID: ok, Media: "/sounds/../../etc/passwd", Target: Both},
		Broadcast{UUID: ok, Media: "/sounds/a.wav both", Target: Both},
		Broadcast{UUID: ok, Media: "http://x/a.wav", Target: Both},
		Broadcast{UUID: ok, Media: "/sounds/a.wav", Target: "all"},
		Broadcast{UUID: ok, Media: "/sounds/a.wav"},
		SetVar{UUID: ok, Name: "", Value: "1"},
		SetVar{UUID: ok, Name: "a b", Value: "1"},
		SetVar{UUID: ok, Name: "x", Value: "1 2"},
		SetVar{UUID: ok, Name: "x", Value: "1\n"},
		SetVar{UUID: "", Name: "x", Value: "1"},
		Exists{UUID: "a;b"},
		Dump{UUID: ""},
		ModuleExists{Module: "shout"},
		ModuleExists{Module: "mod_shout\n"},
		GlobalGetVar{Name: "a b"},
		GlobalSetVar{Name: "x=y", Value: "1"},
		GlobalSetVar{Name: "x", Value: "1=2"},
		GlobalSetVar{Name: "x", Value: "1", IfEqual: true, Expected: "2\nexit"},
		GlobalSetVar{Name: "x", Value: "1", Expected: "2"},
	}
	for _, c := range tests {
		if err := c.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%#v: Validate() = %v, want ErrInvalid", c, err)
		}
	}
}

// TestChannel: a channel command names the channel it acts on.
func TestChannel(t *testing.T) {
	for _, c := range []ChannelCommand{
		RecordStart{UUID: "u1"}, Record{UUID: "u1"}, Broadcast{UUID: "u1"}, SetVar{UUID: "u1"}, Exists{UUID: "u1"}, Dump{UUID: "u1"},
	} {
		if got := c.Channel(); got != "u1" {
			t.Errorf("%#v: Channel() = %q", c, got)
		}
	}
}

// FuzzValidate: whatever its values, a command that validates renders as
// one line whose arguments are the command's own: as many as its shape
// has, none empty but a setvar's value.
func FuzzValidate(f *testing.F) {
	f.Add("aaaa-1", "/rec/r1.wav", "RECORD_MIN_SEC", "2")
	f.Add("a b", "/rec/ r1.wav", "x,y", "2}")
	f.Fuzz(func(t *testing.T, uuid, path, name, value string) {
		for _, c := range []struct {
			cmd  Command
			args int
		}{
			{RecordStart{UUID: uuid, Path: path, TimeLimit: 1, Vars: []Var{{name, value}}}, 6},
			{Record{Op: Mask, UUID: uuid, Path: path}, 4},
			{Broadcast{UUID: uuid, Media: path, Target: Both}, 4},
			{SetVar{UUID: uuid, Name: name, Value: value}, 4},
		} {
			if c.cmd.Validate() != nil {
				continue
			}
			s := c.cmd.String()
			if hasControl(s) {
				t.Fatalf("%q: a control character", s)
			}
			f := strings.Split(s, " ")
			if len(f) != c.args {
				t.Fatalf("%q: %d arguments, want %d", s, len(f), c.args)
			}
			for i, a := range f[:len(f)-1] {
				if a == "" {
					t.Fatalf("%q: argument %d empty", s, i)
				}
			}
		}
	})
}

// TestTokensMatchPatterns: the byte-by-byte checks of uuids, variable
// names and recording variable values accept exactly what their patterns
// accept: every byte first and later, lengths around the limits, and
// random strings over an alphabet of allowed and refused bytes.
func TestTokensMatchPatterns(t *testing.T) {
	checks := []struct {
		name    string
		pattern *regexp.Regexp
		check   func(string) bool
	}{
		{"uuid", regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,127}$`), ValidUUID},
		{"variable name", regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`), validVarName},
		{"recording variable value", regexp.MustCompile(`^[A-Za-z0-9._:/+-]{1,256}$`), validRecordVarValue},
	}
	inputs := []string{"", "\n", "a\n", "a$", "-a", "_a", ".a", "a.b", "a:b", "a/b", "a+b", "a b"}
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}), "a"+string([]byte{byte(c)}), string([]byte{byte(c)})+"a")
	}
	for _, n := range []int{127, 128, 129, 255, 256, 257} {
		inputs = append(inputs, strings.Repeat("a", n), strings.Repeat("a", n-1)+"-", "_"+strings.Repeat("b", n-1))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("aZ09-_.:/+ {}\n\x00\xff%")
	for range 2000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, in := range inputs {
				if got, want := c.check(in), c.pattern.MatchString(in); got != want {
					t.Errorf("%q: %t, the pattern says %t", in, got, want)
				}
			}
		})
	}
}
