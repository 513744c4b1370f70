package simulate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/table"
)

// effectSummary is what TestBehaviour compares of an effect.
type effectSummary struct {
	Kind               effectKind
	Account, What      string
	Cause              string
	Calls, Recordings  int
	FirstFrom, FirstTo string
}

func TestBehaviour(t *testing.T) {
	const base = `
accounts: acme: {
	users: bob: {}
	devices: desk: owner: "bob"
	devices: soft: {}
}
`
	tests := []struct {
		name      string
		old, new  string
		want      []effectSummary
		wantCalls [3]int // started, stopped, settings
	}{
		{name: "unchanged", old: base, new: base},
		{
			name: "newly recorded", old: base,
			new: strings.Replace(base, `devices: soft: {}`, `devices: soft: call_recording: inbound: onnet: enabled: true`, 1),
			want: []effectSummary{{Kind: Started, Account: "acme",
				What:  "callee device:soft b-leg: inbound from onnet to endpoint",
				Cause: "device:soft call_recording.inbound.onnet.enabled", Calls: 1, Recordings: 1,
				FirstFrom: "device:desk", FirstTo: "device:soft"}},
			wantCalls: [3]int{1, 0, 0},
		},
		{
			name: "no longer recorded",
			old:  strings.Replace(base, `users: bob: {}`, `users: bob: call_recording: inbound: offnet: enabled: true`, 1), new: base,
			want: []effectSummary{{Kind: Stopped, Account: "acme",
				What:  "callee device:desk b-leg: inbound from offnet to endpoint",
				Cause: "user:bob call_recording.inbound.offnet.enabled", Calls: 2, Recordings: 2,
				FirstFrom: "offnet", FirstTo: "device:desk"}},
			wantCalls: [3]int{0, 2, 0},
		},
		{
			// A default's change is one settings effect however many
			// recordings it touches; a provenance-only change is none.
			name: "settings changed",
			old:  "defaults: record_sample_rate: 8000\n" + strings.Replace(base, `users: bob: {}`, `users: bob: call_recording: any: any: enabled: true`, 1),
			new:  "defaults: record_sample_rate: 16000\n" + strings.Replace(base, `users: bob: {}`, `users: bob: call_recording: any: any: enabled: true`, 1),
			want: []effectSummary{{Kind: SettingsChanged,
				What:  "record_sample_rate: 8000 -> 16000 (<- defaults record_sample_rate)",
				Calls: 8, Recordings: 8, FirstFrom: "device:desk", FirstTo: "device:desk"}},
			wantCalls: [3]int{0, 0, 8},
		},
		{
			name: "provenance only",
			old:  strings.Replace(base, `users: bob: {}`, `users: bob: call_recording: inbound: any: enabled: true`, 1),
			new:  strings.Replace(base, `users: bob: {}`, `users: bob: call_recording: inbound: {onnet: enabled: true, offnet: enabled: true}`, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Diff(compile(t, "package recpol\n"+tt.old), compile(t, "package recpol\n"+tt.new))
			if err != nil {
				t.Fatal(err)
			}
			b := d.behaviour()
			var got []effectSummary
			for _, es := range [][]effect{b.Started, b.Stopped, b.Settings} {
				for _, e := range es {
					got = append(got, effectSummary{e.Kind, e.Account, e.What, e.Cause, len(e.Calls), e.Recordings, e.Calls[0].From, e.Calls[0].To})
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("effects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCalls, [3]int{b.StartedCalls, b.StoppedCalls, b.SettingsCalls}); diff != "" {
				t.Errorf("calls started, stopped, settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteBudget(t *testing.T) {
	head := "## head\n\nsummary line\n"
	secs := []mdSection{
		{heading: "\n### Big\n\n", unit: "cells", items: []mdItem{
			{text: "- big group\n" + strings.Repeat("x", 200) + "\n", size: 300},
			{text: "- small group\n" + strings.Repeat("y", 200) + "\n", size: 2},
		}},
		{heading: "\n### Calls\n\n", unit: "calls", items: []mdItem{
			{text: "- call group " + strings.Repeat("z", 900) + "\n", size: 40},
		}},
	}
	var full bytes.Buffer
	if err := writeBudget(&full, head, secs, MarkdownOptions{}, "the largest groups", "group"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		max      int
		want     []string // substrings, in this order
		wantNot  []string
		wantFull bool
	}{
		{name: "no limit", max: 0, wantFull: true},
		{name: "fits", max: full.Len(), wantFull: true},
		{
			name: "cut", max: 800,
			want: []string{head, "**Cut to fit a pull-request comment** (800 characters): the summary above is complete; below, the largest groups, 2 of 3 groups left out",
				"The whole report: `full.md`", "### Big", "- big group", "- … 1 more group (2 cells) left out here",
				"### Calls", "- … 1 group (40 calls) left out here"},
			wantNot: []string{"- small group", "- call group"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeBudget(&b, head, secs, MarkdownOptions{MaxChars: tt.max, FullReport: "`full.md`"}, "the largest groups", "group"); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			if tt.wantFull {
				if diff := cmp.Diff(full.String(), got); diff != "" {
					t.Errorf("report that fits (-want +got):\n%s", diff)
				}
				return
			}
			if n := utf8.RuneCountInString(got); n > tt.max {
				t.Errorf("%d characters, want at most %d:\n%s", n, tt.max, got)
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("no %q (in order) in:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("%q kept in:\n%s", w, got)
				}
			}
		})
	}
}

// TestDiffGeneratedTree is the review of the two changes of issue 17 on a
// generated tree: a default's sample rate (every recording changes
// settings, no call changes whether it is recorded) and one device's
// inbound.onnet cell (calls newly recorded). The Markdown report fits a
// pull-request comment and says so in its first 20 lines. The tree
// has 300 accounts; this one has 40 (the report is cut all the same), to
// keep the race-enabled test suite short.
func TestDiffGeneratedTree(t *testing.T) {
	dir := t.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 40, Users: 10, Devices: 20, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	compileDir := func() *table.Table {
		t.Helper()
		res, err := compiler.Options{}.Compile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if res.Table == nil {
			t.Fatalf("generated policy is invalid:\n%v", res.Diagnostics)
		}
		return res.Table
	}
	edit := func(file, old, new string) (undo func()) {
		t.Helper()
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s has no %q", file, old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := compileDir()
	tests := []struct {
		name           string
		file, old, new string
		cut            bool     // the whole report is over the limit
		wantHead       []string // in the first 20 lines
	}{
		{
			name: "defaults sample rate", file: "shared.cue", old: "record_sample_rate: 8000", new: "record_sample_rate: 16000", cut: true,
			wantHead: []string{
				"- **Newly recorded:** no call",
				"- **No longer recorded:** no call (no call changes whether, or by whom, it is recorded)",
				"- **Settings changed on recorded calls:** ",
				"`record_sample_rate: 8000 -> 16000 (<- defaults record_sample_rate)`: ",
				"**Cut to fit a pull-request comment** (60,000 characters)",
			},
		},
		{
			name: "one device inbound onnet", file: "acct-00007.cue", old: `"d000": {}`, new: `"d000": {call_recording: inbound: onnet: enabled: true}`,
			wantHead: []string{
				"- **Newly recorded:** 20 calls (20 recordings) in 1 account",
				"  - account acct-00007, 20 calls: `callee device:d000 b-leg: inbound from onnet to endpoint`, enabled by `device:d000 call_recording.inbound.onnet.enabled`",
				"    - device:d001, device:d002, device:d003, device:d004, device:d005, device:d006, device:d007, device:d008 and 12 more -> device:d000",
				"- **No longer recorded:** no call",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			undo := edit(tt.file, tt.old, tt.new)
			defer undo()
			d, err := Diff(base, compileDir())
			if err != nil {
				t.Fatal(err)
			}
			var full, cut bytes.Buffer
			if err := d.WriteMarkdown(&full); err != nil {
				t.Fatal(err)
			}
			if err := d.WriteMarkdownWith(&cut, MarkdownOptions{MaxChars: CommentLimit}); err != nil {
				t.Fatal(err)
			}
			if got := utf8.RuneCount(full.Bytes()) > CommentLimit; got != tt.cut {
				t.Errorf("whole report of %d characters: over the limit %t, want %t", utf8.RuneCount(full.Bytes()), got, tt.cut)
			}
			if n := utf8.RuneCount(cut.Bytes()); n > CommentLimit {
				t.Errorf("report of %d characters, want at most %d", n, CommentLimit)
			}
			head := strings.Join(strings.SplitN(cut.String(), "\n", 21)[:20], "\n")
			for _, w := range tt.wantHead {
				if !strings.Contains(head, w) {
					t.Errorf("first 20 lines lack %q:\n%s", w, head)
				}
			}
		})
	}
}

func TestKeepAccounts(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
		wantErr string
	}{
		{pattern: "*", want: []string{"pci-callcentre", "sales", "wazo-pbx"}},
		{pattern: "pci-*", want: []string{"pci-callcentre"}},
		{pattern: "nope", wantErr: `no account matches "nope"`},
		{pattern: "[", wantErr: `pattern "["`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			r, err := Run(compileFiles(t, examplePolicy(t)))
			if err != nil {
				t.Fatal(err)
			}
			err = r.KeepAccounts(tt.pattern)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			var got []string
			for _, a := range r.Accounts {
				got = append(got, a.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("accounts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSimulateMarkdownBudget: cut to a limit, the simulation keeps the
// summary line of every account and the tables that fit.
func TestSimulateMarkdownBudget(t *testing.T) {
	r, err := Run(compileFiles(t, examplePolicy(t)))
	if err != nil {
		t.Fatal(err)
	}
	var full, cut bytes.Buffer
	if err := r.WriteMarkdown(&full); err != nil {
		t.Fatal(err)
	}
	const limit = 3800
	if err := r.WriteMarkdownWith(&cut, MarkdownOptions{MaxChars: limit}); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCount(full.Bytes()); n <= limit {
		t.Fatalf("whole report of %d characters: the example no longer exercises the cut", n)
	}
	if n := utf8.RuneCount(cut.Bytes()); n > limit {
		t.Errorf("cut report of %d characters, want at most %d", n, limit)
	}
	for _, w := range []string{"| pci-callcentre | 3 | 3 | 39 | 14 |", "| sales |", "| wazo-pbx |", "**Cut to fit a pull-request comment**",
		"<details><summary>account <code>pci-callcentre</code>", "- … 2 more tables (2 accounts) left out here"} {
		if !strings.Contains(cut.String(), w) {
			t.Errorf("cut report lacks %q:\n%s", w, cut.String())
		}
	}
	if strings.Contains(cut.String(), "<details><summary>account <code>wazo-pbx</code>") {
		t.Errorf("cut report keeps the last account's table:\n%s", cut.String())
	}
}
