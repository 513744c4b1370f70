package compiler

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/gen"
)

// compileBoth compiles files with and without the plain-data path.
func compileBoth(files []File) (plain, cue *Result) {
	plain = Options{}.CompileFiles(files)
	plainDataPath = false
	defer func() { plainDataPath = true }()
	return plain, Options{}.CompileFiles(files)
}

// sameResults reports how two results differ: their tables' canonical
// JSON (and so their versions) and their diagnostics, positions included.
func sameResults(t *testing.T, plain, cue *Result) {
	t.Helper()
	if diff := cmp.Diff(cue.Diagnostics, plain.Diagnostics); diff != "" {
		t.Fatalf("diagnostics differ (-cue +plain):\n%s", diff)
	}
	if (plain.Table == nil) != (cue.Table == nil) {
		t.Fatalf("table: plain %v, cue %v", plain.Table != nil, cue.Table != nil)
	}
	if plain.Table == nil {
		return
	}
	a, _ := plain.Table.MarshalJSON()
	b, _ := cue.Table.MarshalJSON()
	if !bytes.Equal(a, b) {
		t.Fatalf("tables differ:\nplain %s\ncue   %s", a, b)
	}
}

// plainSeeds are the seed inputs of FuzzPlainDataPath: the first two files
// of every policy of testdata/policies and testdata/bad, and a generated
// tree's files with and without its template.
func plainSeeds(t testing.TB) [][2][]byte {
	var seeds [][2][]byte
	for _, root := range []string{"../testdata/policies", "../testdata/bad"} {
		dirs, _ := filepath.Glob(filepath.Join(root, "*"))
		sort.Strings(dirs)
		for _, d := range dirs {
			files, _ := filepath.Glob(filepath.Join(d, "*.cue"))
			var s [2][]byte
			for i := 0; i < len(files) && i < 2; i++ {
				s[i], _ = os.ReadFile(files[i])
			}
			if s[0] != nil {
				seeds = append(seeds, s)
			}
		}
	}
	dir := t.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 2, Users: 2, Devices: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	files, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, [2][]byte{files[0].Data, files[1].Data}, [2][]byte{files[0].Data, files[2].Data},
		[2][]byte{files[0].Data, []byte("package recpol\ndefaults: {format: \"wav\"}\n")})
	return seeds
}

// FuzzPlainDataPath holds the plain-data path to CUE's: one or two policy
// files compile to the same table bytes and the same diagnostics, with the
// same positions, whether plain data is decoded from its syntax or
// evaluated by CUE. With generate set, a and b are not the files but the
// choices of a generator (plainGen) that writes plain-data policies from
// the schema's own vocabulary, valid and not, so that most inputs reach
// the plain-data path or its fallbacks rather than the parser's errors.
func FuzzPlainDataPath(f *testing.F) {
	for _, s := range plainSeeds(f) {
		f.Add(s[0], s[1], false)
	}
	for i := range 8 {
		a := make([]byte, 64)
		b := make([]byte, 48)
		for j := range a {
			a[j] = byte(j*31 + i*17)
		}
		for j := range b {
			b[j] = byte(j*7 + i*53)
		}
		f.Add(a, b, true)
	}
	f.Fuzz(func(t *testing.T, a, b []byte, generate bool) {
		if generate {
			a, b = plainGen(a), plainGen(b)
		}
		files := []File{{Name: "a.cue", Data: a}}
		if len(b) > 0 {
			files = append(files, File{Name: "b.cue", Data: b})
		}
		plain, cue := compileBoth(files)
		sameResults(t, plain, cue)
	})
}

// plainGen writes a plain-data policy file, its choices read from choices:
// fields of plainSchema (and now and then an unknown one), ids valid and
// not, values of every leaf's vocabulary and of other kinds, and fields
// declared twice.
func plainGen(choices []byte) []byte {
	g := &plainGenerator{in: choices}
	// Half the inputs are strict: nothing the schema rejects, no value
	// given twice, so that they reach the plain-data path.
	g.strict = g.next(2) == 0
	var b strings.Builder
	b.WriteString("package recpol\n\n")
	g.fields(&b, plainSchema(), 0)
	return []byte(b.String())
}

type plainGenerator struct {
	in     []byte
	strict bool
}

// oneIn reports true one time in n, never when strict.
func (g *plainGenerator) oneIn(n int) bool { return !g.strict && g.next(n) == 0 }

func (g *plainGenerator) next(n int) int {
	if len(g.in) == 0 || n <= 0 {
		return 0
	}
	c := int(g.in[0])
	g.in = g.in[1:]
	return c % n
}

var (
	genIDs     = []string{"a", "b", "u1", "u2", "d-1", "d.2", "cf_1", "7"}
	genBadIDs  = []string{"-x", "a b", "_h", ""}
	genStrings = []string{"mp3", "wav", "put", "post", "self", "peer", "both", "start", "stop", "mask", "toggle",
		"call", "*", "#", "5", "72", "+4420", "https://rec.example.com/x", "http://h", "https://u:p@h/x", "ftp://h",
		"Card payments", "a b", "", "x{y}", "^7[0-9]+$", "(", "u1", "u2", "zz", "record_call", "record_caller",
		"aleg", "bleg", "tone", "/srv/consent.wav", "tone_stream://%(500,0,1000)", "/srv/../x", "$${sounds_dir}/x"}
	genInts = []string{"0", "1", "2", "4", "5", "60", "499", "500", "3000", "3600", "8000", "10000", "10800",
		"10801", "16000", "44100", "48000", "99999999999999999999"}
	genOther = []string{"true", "false", `"x"`, "1", "1.5", "{}", "[]", "null", "0x10", "1_000", "-1"}
)

// fields writes the fields of a struct of schema s.
func (g *plainGenerator) fields(b *strings.Builder, s *snode, depth int) {
	var names []string
	switch s.kind {
	case sStruct:
		for n := range s.fields {
			names = append(names, n)
		}
		sort.Strings(names)
	case sMap:
		names = genIDs
	case sAction:
		// A module the schema knows (else, now and then, any string),
		// then the data for it.
		mods := sortedKeys(s.byModule)
		mod := mods[g.next(len(mods))]
		if g.oneIn(8) {
			mod = genStrings[g.next(len(genStrings))]
		}
		fmt.Fprintf(b, "module: %s\n", strconv.Quote(mod))
		if data, ok := s.byModule[mod]; ok && g.next(3) != 0 {
			b.WriteString("data: ")
			g.value(b, data, depth+1)
			b.WriteString("\n")
		}
		return
	}
	// Now and then a template: in a map, one that matches every label
	// (applied on the plain-data path); elsewhere, or of another
	// pattern, one left to CUE.
	if s.kind == sMap && g.next(4) == 0 {
		fmt.Fprintf(b, "[%s]: ", []string{"_", "string"}[g.next(2)])
		g.value(b, s.elem, depth+1)
		b.WriteString("\n")
	} else if s.kind == sStruct && g.oneIn(24) {
		b.WriteString([]string{"[_]: {}\n", "[=~\"^a\"]: {}\n"}[g.next(2)])
	}
	n := 1 + g.next(4)
	if depth > 5 {
		n = g.next(2)
	}
	seen := map[string]bool{}
	for range n {
		if len(g.in) == 0 {
			return
		}
		name := "zz"
		switch {
		case s.kind == sMap && g.oneIn(24):
			name = genBadIDs[g.next(len(genBadIDs))]
		case len(names) > 0 && !g.oneIn(32):
			name = names[g.next(len(names))]
		}
		if g.strict && seen[name] && (s.kind != sMap || name == "module") {
			continue
		}
		seen[name] = true
		var sub *snode
		switch s.kind {
		case sStruct:
			sub = s.fields[name].node
		case sMap:
			sub = s.elem
		}
		fmt.Fprintf(b, "%s: ", strconv.Quote(name))
		g.value(b, sub, depth+1)
		b.WriteString("\n")
	}
}

// value writes a value of schema s (nil: unknown), now and then of
// another kind.
func (g *plainGenerator) value(b *strings.Builder, s *snode, depth int) {
	if s == nil || g.oneIn(40) {
		b.WriteString(genOther[g.next(len(genOther))])
		return
	}
	switch s.kind {
	case sStruct, sMap, sAction:
		b.WriteString("{\n")
		g.fields(b, s, depth)
		b.WriteString("}")
	case sList:
		b.WriteString("[")
		for i := range g.next(4) {
			if i > 0 {
				b.WriteString(", ")
			}
			g.value(b, s.elem, depth+1)
		}
		b.WriteString("]")
	case sBool:
		b.WriteString([]string{"true", "false"}[g.next(2)])
	case sInt, sString:
		// Mostly a value the leaf accepts, else any of the vocabulary.
		vocab := genInts
		if s.kind == sString {
			vocab = genStrings
		}
		var ok []string
		for _, v := range vocab {
			n := &pnode{kind: pString, s: v}
			if s.kind == sInt {
				i, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					continue
				}
				n = &pnode{kind: pInt, i: i}
			}
			if s.check(n) {
				ok = append(ok, v)
			}
		}
		if len(ok) == 0 || g.oneIn(6) {
			ok = vocab
		}
		v := ok[g.next(len(ok))]
		if s.kind == sString {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
	}
}
