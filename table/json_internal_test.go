package table

import (
	"testing"
)

// TestEncoderForgetsProvenances encodes two accounts with one encoder:
// it memoizes the encoding of the provenances of the account it encodes,
// not of every account before it.
func TestEncoderForgetsProvenances(t *testing.T) {
	account := func(id, scope string) *Account {
		a := &Account{ID: id}
		s := &Settings{Format: "mp3"}
		for i := range Directions {
			for j := range Networks {
				p := &Provenance{Enabled: scope + " enabled " + Directions[i].String() + Networks[j].String()}
				a.Cells[i][j] = Cell{Settings: s, Provenance: p}
			}
		}
		return a
	}
	for _, tc := range []struct {
		name     string
		accounts []*Account
		want     int // provenances memoized after the last
	}{
		{"one", []*Account{account("a", "account:a")}, 4},
		{"two", []*Account{account("a", "account:a"), account("b", "account:b")}, 4},
		{"three", []*Account{account("a", "account:a"), account("b", "account:b"), account("c", "account:c")}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnc()
			for _, a := range tc.accounts {
				e.account(a)
			}
			if got := len(e.provs); got != tc.want {
				t.Errorf("%d provenances memoized, want %d", got, tc.want)
			}
		})
	}
}

// TestEncStr writes JSON strings: plain ones whole, and what JSON
// requires escaped wherever it comes, first, after plain bytes or last.
func TestEncStr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"device:d1 call_recording.any.any.enabled", `"device:d1 call_recording.any.any.enabled"`},
		{`"q"`, `"\"q\""`},
		{`a\b`, `"a\\b"`},
		{"tab\there", `"tab\there"`},
		{"x\n", `"x\n"`},
		{"\r", `"\r"`},
		{"ab\x01", `"ab\u0001"`},
		{"<&>", `"<&>"`},
		{"héllo", `"héllo"`},
		{"ok\xffbad", `"ok\ufffdbad"`},
		{"é\"", `"é\""`},
	} {
		e := newEnc()
		e.str(tc.in)
		if got := string(e.b); got != tc.want {
			t.Errorf("str(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestSharedMetaflowsCompiledOnce indexes an account whose endpoints
// share their metaflows: each pattern is compiled once, by the first
// endpoint, and matches for every endpoint.
func TestSharedMetaflowsCompiledOnce(t *testing.T) {
	cells := func() Cells {
		var c Cells
		s, p := &Settings{}, &Provenance{}
		for i := range Directions {
			for j := range Networks {
				c[i][j] = Cell{Settings: s, Provenance: p}
			}
		}
		return c
	}
	m := &Metaflows{Patterns: []MetaflowBinding{{Code: "^9[0-9]$", From: "account:a"}}}
	a := &Account{ID: "a", Cells: cells(), Users: map[string]*Endpoint{}, Devices: map[string]*Endpoint{}}
	for _, id := range []string{"u1", "u2", "u3"} {
		a.Users[id] = &Endpoint{Kind: User, ID: id, Cells: cells(), Metaflows: m}
	}
	if err := a.index(); err != nil {
		t.Fatal(err)
	}
	first := m.Patterns[0].re
	if first == nil {
		t.Fatal("the pattern was not compiled")
	}
	// Indexing again (another account sharing them, say) keeps the
	// compiled pattern.
	a.indexed = false
	if err := a.index(); err != nil {
		t.Fatal(err)
	}
	if m.Patterns[0].re != first {
		t.Errorf("the pattern was compiled again")
	}
	for _, tc := range []struct {
		digits string
		match  bool
	}{{"91", true}, {"9", false}, {"81", false}} {
		for id, e := range a.Users {
			if _, ok := e.Metaflows.Match(tc.digits); ok != tc.match {
				t.Errorf("%s: Match(%q) = %v, want %v", id, tc.digits, ok, tc.match)
			}
		}
	}
}
