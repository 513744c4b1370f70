package compiler

import "testing"

// TestCacheKey: a group's key changes with any file's name, content or
// place, and only then.
func TestCacheKey(t *testing.T) {
	sums := func(files ...File) [][32]byte {
		var out [][32]byte
		for _, f := range files {
			out = append(out, fileSum(f))
		}
		return out
	}
	shared := File{Name: "shared.cue", Data: []byte("package recpol\n")}
	a := File{Name: "a.cue", Data: []byte("package recpol\naccounts: a: {}\n")}
	base := cacheKey(sums(shared, a))
	for _, tc := range []struct {
		name string
		sums [][32]byte
		same bool
	}{
		{"the same files", sums(shared, a), true},
		{"another content", sums(shared, File{Name: a.Name, Data: []byte("package recpol\naccounts: b: {}\n")}), false},
		{"another name", sums(shared, File{Name: "b.cue", Data: a.Data}), false},
		{"another order", sums(a, shared), false},
		{"a file less", sums(a), false},
		{"name and content shifted", sums(shared, File{Name: "a.cu", Data: append([]byte("e"), a.Data...)}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cacheKey(tc.sums) == base; got != tc.same {
				t.Errorf("same key = %v, want %v", got, tc.same)
			}
		})
	}
}
