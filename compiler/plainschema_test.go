package compiler

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	recpolcue "github.com/recpol/recpol/cue"
)

// TestPlainSchema holds plainSchema to the embedded schema, the one source
// of truth: every struct has the same fields, optional or required, and is
// closed; every map's keys, every list's elements, every action's modules
// and every leaf accept exactly the probe values CUE accepts.
func TestPlainSchema(t *testing.T) {
	ctx := cuecontext.New()
	schema := ctx.CompileBytes(recpolcue.Schema())
	if err := schema.Err(); err != nil {
		t.Fatal(err)
	}
	// The probes: every enum value of the schema, values on both sides of
	// every bound, ids and URLs valid and not, and a value of each kind.
	var probes []any
	for _, n := range []int64{-1, 0, 1, 4, 5, 499, 500, 7999, 8000, 10000, 10001, 10800, 10801, 16000, 32000, 44100, 48000, 1 << 40} {
		probes = append(probes, n)
	}
	for _, s := range []string{"", "x", "mp3", "wav", "put", "post", "self", "peer", "both", "start", "stop", "mask",
		"unmask", "pause", "resume", "toggle", "call", "0", "9", "*", "#", "10", "a", "a-b.c_d", "-a", ".a", "a b",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "http://h/x", "https://h", "https://u@h/x", "ftp://h/x",
		"https://h?x", "record_call", "record_caller", "MP3", "aleg", "bleg", "tone", "/srv/consent.wav"} {
		probes = append(probes, s)
	}
	probes = append(probes, true, false, 1.5)
	var walk func(path string, s *snode, v cue.Value)
	valid := func(v cue.Value, x any) bool {
		return v.Unify(ctx.Encode(x)).Validate(cue.Concrete(true)) == nil
	}
	walk = func(path string, s *snode, v cue.Value) {
		switch s.kind {
		case sStruct:
			var got []string
			it, err := v.Fields(cue.Optional(true))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for it.Next() {
				name := it.Selector().Unquoted()
				got = append(got, fmt.Sprintf("%s required=%v", name, !it.IsOptional()))
				sf, ok := s.fields[name]
				if !ok {
					continue
				}
				walk(path+"."+name, sf.node, it.Value())
			}
			var want []string
			for name, sf := range s.fields {
				want = append(want, fmt.Sprintf("%s required=%v", name, sf.required))
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("%s: fields\n cue %v\n go  %v", path, got, want)
			}
			if valid(v, map[string]any{"zz_unknown": 1}) {
				t.Errorf("%s: CUE accepts an unknown field", path)
			}
		case sMap:
			for _, p := range probes {
				k, ok := p.(string)
				if !ok || k == "" {
					continue
				}
				cueOK := v.Unify(ctx.CompileString(fmt.Sprintf("{%q: _}", k))).Validate() == nil
				goOK := s.key == nil || s.key.MatchString(k)
				if cueOK != goOK {
					t.Errorf("%s: key %q: cue %v, go %v", path, k, cueOK, goOK)
				}
			}
			walk(path+".[k]", s.elem, v.Unify(ctx.CompileString(`{k: _}`)).LookupPath(cue.MakePath(cue.Str("k"))))
		case sList:
			walk(path+"[0]", s.elem, v.Unify(ctx.CompileString(`[_]`)).LookupPath(cue.MakePath(cue.Index(0))))
		case sAction:
			for _, p := range probes {
				m, ok := p.(string)
				if !ok {
					continue
				}
				cueOK := valid(v, map[string]any{"module": m})
				_, goOK := s.byModule[m]
				if cueOK != goOK {
					t.Errorf("%s: module %q: cue %v, go %v", path, m, cueOK, goOK)
				}
				if !goOK {
					continue
				}
				a := v.Unify(ctx.Encode(map[string]any{"module": m}))
				walk(path+"{module:"+m+"}", &snode{kind: sStruct, fields: map[string]sfield{
					"module": {node: &snode{kind: sString, enumS: []string{m}}, required: true},
					"data":   {node: s.byModule[m]},
				}}, a)
			}
		default:
			for _, p := range probes {
				var n *pnode
				switch x := p.(type) {
				case int64:
					n = &pnode{kind: pInt, i: x}
				case string:
					n = &pnode{kind: pString, s: x}
				case bool:
					n = &pnode{kind: pBool, b: x}
				case float64:
					n = &pnode{kind: pStruct} // never valid on the Go side
				}
				if cueOK, goOK := valid(v, p), s.check(n); cueOK != goOK {
					t.Errorf("%s: %#v: cue %v, go %v", path, p, cueOK, goOK)
				}
			}
		}
	}
	walk("", plainSchema(), schema)
}
