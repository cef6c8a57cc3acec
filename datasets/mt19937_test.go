package datasets

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// rngGolden mirrors testdata/rng_golden.json, written by testdata/gen_rng.py from NumPy.
type rngGolden struct {
	Numpy string `json:"numpy"`
	Seeds []struct {
		Seed         uint32              `json:"seed"`
		KeyFirst     []uint32            `json:"key_first"`
		KeyLast      uint32              `json:"key_last"`
		Uint32       []uint32            `json:"uint32"`
		RandomSample []string            `json:"random_sample"`
		UniformShear []string            `json:"uniform_shear"`
		UniformZoom2 []string            `json:"uniform_zoom2"`
		AfterUniform string              `json:"after_uniform"`
		Permutation  map[string]jsonList `json:"permutation"`
	} `json:"seeds"`
	Global []struct {
		Seed uint32 `json:"seed"`
		N    int    `json:"n"`
		Perm []int  `json:"perm"`
		Next string `json:"next"`
	} `json:"global"`
}

// jsonList holds either a permutation (list) or the repr of the draw that follows it.
type jsonList struct {
	ints []int
	str  string
}

func (l *jsonList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &l.str)
	}
	return json.Unmarshal(b, &l.ints)
}

func loadRNGGolden(t *testing.T) *rngGolden {
	t.Helper()
	raw, err := os.ReadFile("testdata/rng_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g rngGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func parseF(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRandomStateMatchesNumPy(t *testing.T) {
	g := loadRNGGolden(t)
	if len(g.Seeds) == 0 {
		t.Fatal("empty golden")
	}
	for _, s := range g.Seeds {
		rs := NewRandomState(s.Seed)
		for i, want := range s.KeyFirst {
			if rs.key[i] != want {
				t.Fatalf("seed %d: key[%d]=%d, NumPy %d", s.Seed, i, rs.key[i], want)
			}
		}
		if rs.key[mtN-1] != s.KeyLast {
			t.Fatalf("seed %d: key[623]=%d, NumPy %d", s.Seed, rs.key[mtN-1], s.KeyLast)
		}
		for i, want := range s.Uint32 {
			if got := rs.Uint32(); got != want {
				t.Fatalf("seed %d: uint32 #%d = %d, NumPy %d", s.Seed, i, got, want)
			}
		}
		rs.Seed(s.Seed)
		for i, w := range s.RandomSample {
			if got, want := rs.RandomSample(), parseF(t, w); got != want {
				t.Fatalf("seed %d: random_sample #%d = %v, NumPy %v", s.Seed, i, got, want)
			}
		}
		rs.Seed(s.Seed)
		for i, w := range s.UniformShear {
			if got, want := rs.Uniform(-0.2, 0.2), parseF(t, w); got != want {
				t.Fatalf("seed %d: uniform(-0.2,0.2) #%d = %v, NumPy %v", s.Seed, i, got, want)
			}
		}
		zoom := Zoom(0.2)
		for i, w := range s.UniformZoom2 {
			if got, want := rs.Uniform(zoom[0], zoom[1]), parseF(t, w); got != want {
				t.Fatalf("seed %d: uniform(0.8,1.2,2)[%d] = %v, NumPy %v", s.Seed, i, got, want)
			}
		}
		if got, want := rs.RandomSample(), parseF(t, s.AfterUniform); got != want {
			t.Fatalf("seed %d: draw after uniforms = %v, NumPy %v", s.Seed, got, want)
		}
		for key, val := range s.Permutation {
			if val.str != "" {
				continue
			}
			n, _ := strconv.Atoi(key)
			rs.Seed(s.Seed)
			p, err := rs.Permutation(n)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != len(val.ints) {
				t.Fatalf("seed %d: permutation(%d) has %d entries, NumPy %d", s.Seed, n, len(p), len(val.ints))
			}
			for i := range p {
				if p[i] != val.ints[i] {
					t.Fatalf("seed %d: permutation(%d)[%d] = %d, NumPy %d", s.Seed, n, i, p[i], val.ints[i])
				}
			}
			// The number of 32-bit outputs consumed must match too: the next draw agrees.
			if got, want := rs.RandomSample(), parseF(t, s.Permutation[key+"_next"].str); got != want {
				t.Fatalf("seed %d: draw after permutation(%d) = %v, NumPy %v", s.Seed, n, got, want)
			}
		}
	}
	for _, c := range g.Global {
		rs := NewRandomState(c.Seed)
		p, err := rs.Permutation(c.N)
		if err != nil {
			t.Fatal(err)
		}
		for i := range p {
			if p[i] != c.Perm[i] {
				t.Fatalf("np.random.seed(%d); permutation(%d)[%d] = %d, NumPy %d", c.Seed, c.N, i, p[i], c.Perm[i])
			}
		}
		if got, want := rs.RandomSample(), parseF(t, c.Next); got != want {
			t.Fatalf("seed %d: draw after permutation(%d) = %v, NumPy %v", c.Seed, c.N, got, want)
		}
	}
}

func TestPermutationNegative(t *testing.T) {
	if _, err := NewRandomState(0).Permutation(-1); err == nil {
		t.Fatal("want error for negative n")
	}
}

func TestIntervalWide(t *testing.T) {
	// Bounds above 2**32-1 take the 64-bit path; values must stay within [0, max].
	rs := NewRandomState(3)
	for _, max := range []uint64{1 << 32, 1<<40 + 5, 1<<63 + 1} {
		for i := 0; i < 100; i++ {
			if v := rs.interval(max); v > max {
				t.Fatalf("interval(%d) = %d", max, v)
			}
		}
	}
}
