package fakeswitch

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pcmPerSample is pcm as it was first written, looking each voice's
// table up for every sample: the reference the faster pcm must equal.
func pcmPerSample(segs []segment, rate int, f recFlags) []int16 {
	nch := f.channels()
	var out []int16
	tables := map[voice][]int{}
	mix := func(vs []voice, j int) int {
		z := 0
		for _, v := range vs {
			t, ok := tables[v]
			if !ok {
				t = toneTable(float64(v), rate)
				tables[v] = t
			}
			z += t[j%len(t)]
		}
		return z
	}
	j := 0
	for _, s := range segs {
		for k := 0; k < s.n; k, j = k+1, j+1 {
			if s.masked {
				for c := 0; c < nch; c++ {
					out = append(out, 0)
				}
				continue
			}
			r, w := mix(s.read, j), mix(s.write, j)
			if f.stereo {
				l, rt := r, w
				if f.swap {
					l, rt = w, r
				}
				out = append(out, clip16(l), clip16(rt))
				continue
			}
			out = append(out, clip16(r+w))
		}
	}
	return out
}

// TestPCMEqualsPerSample: pcm writes the same samples as the per-sample
// reference for random layouts: masked spans, several voices mixed (and
// clipped), mono, stereo and swapped stereo, both rates.
func TestPCMEqualsPerSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hz := []voice{300, 440, 700, 1000, 1234}
	voices := func() []voice {
		var vs []voice
		for range rng.IntN(4) {
			vs = append(vs, hz[rng.IntN(len(hz))])
		}
		return vs
	}
	for i := range 200 {
		var segs []segment
		for range 1 + rng.IntN(5) {
			segs = append(segs, segment{n: rng.IntN(3000), masked: rng.IntN(4) == 0, read: voices(), write: voices()})
		}
		rate := []int{8000, 16000}[rng.IntN(2)]
		f := recFlags{read: true, write: true, stereo: rng.IntN(2) == 0, swap: rng.IntN(2) == 0}
		want := pcmPerSample(segs, rate, f)
		if diff := cmp.Diff(want, pcm(segs, rate, f)); diff != "" {
			t.Fatalf("layout %d (%+v, rate %d, %+v): pcm differs from the reference (-want +got):\n%s", i, segs, rate, f, diff)
		}
	}
}

// BenchmarkPCM renders a 3 s two-voice mono recording at 8 kHz, as the
// soak's calls make: pcm against the per-sample reference.
func BenchmarkPCM(b *testing.B) {
	segs := []segment{{n: 8000, read: []voice{440}, write: []voice{700}}, {n: 8000, masked: true}, {n: 8000, read: []voice{440}, write: []voice{700}}}
	f := recFlags{read: true, write: true}
	for _, bc := range []struct {
		name string
		fn   func([]segment, int, recFlags) []int16
	}{{"pcm", pcm}, {"per-sample", pcmPerSample}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.fn(segs, 8000, f)
			}
		})
	}
}
