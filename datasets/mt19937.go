package datasets

import "fmt"

// RandomState is NumPy's legacy random generator (np.random.RandomState, the one behind
// np.random.seed / np.random.permutation / np.random.uniform), reimplemented bit for bit as of
// NumPy 1.24: Keras' ImageDataGenerator draws every shuffle and every augmentation parameter from
// it, so matching its streams is what makes a seeded Go run pick the same images, in the same
// order, with the same shears, zooms and flips as the Keras run in the book.
//
// The zero value is not usable; call NewRandomState or Seed. A RandomState is not safe for
// concurrent use.
type RandomState struct {
	key [mtN]uint32
	pos int
}

const (
	mtN         = 624
	mtM         = 397
	mtMatrixA   = 0x9908b0df
	mtUpperMask = 0x80000000
	mtLowerMask = 0x7fffffff
)

// NewRandomState returns a generator in the state np.random.RandomState(seed) starts in.
func NewRandomState(seed uint32) *RandomState {
	r := &RandomState{}
	r.Seed(seed)
	return r
}

// Seed resets the generator exactly as np.random.seed(seed) does for an integer seed: the
// reference MT19937 init_genrand. NumPy rejects seeds outside [0, 2**32-1]; the uint32 type
// makes that range the only one expressible here.
func (r *RandomState) Seed(seed uint32) {
	r.key[0] = seed
	for i := 1; i < mtN; i++ {
		prev := r.key[i-1]
		r.key[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	r.pos = mtN
}

// generate refills the state block (mt19937_gen in NumPy's C sources).
func (r *RandomState) generate() {
	k := &r.key
	var i int
	for i = 0; i < mtN-mtM; i++ {
		y := (k[i] & mtUpperMask) | (k[i+1] & mtLowerMask)
		k[i] = k[i+mtM] ^ (y >> 1) ^ (-(y & 1) & mtMatrixA)
	}
	for ; i < mtN-1; i++ {
		y := (k[i] & mtUpperMask) | (k[i+1] & mtLowerMask)
		k[i] = k[i+(mtM-mtN)] ^ (y >> 1) ^ (-(y & 1) & mtMatrixA)
	}
	y := (k[mtN-1] & mtUpperMask) | (k[0] & mtLowerMask)
	k[mtN-1] = k[mtM-1] ^ (y >> 1) ^ (-(y & 1) & mtMatrixA)
	r.pos = 0
}

// Uint32 returns the next raw 32-bit output (tempered), NumPy's next_uint32.
func (r *RandomState) Uint32() uint32 {
	if r.pos == mtN {
		r.generate()
	}
	y := r.key[r.pos]
	r.pos++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// uint64 is NumPy's legacy next_uint64 for MT19937: the first 32-bit output is the high half.
func (r *RandomState) uint64() uint64 {
	hi := uint64(r.Uint32())
	return hi<<32 | uint64(r.Uint32())
}

// RandomSample returns a float64 in [0, 1) as np.random.random_sample() does: 53 random bits
// from two outputs, (a>>5)·2^26 + (b>>6), divided by 2^53.
func (r *RandomState) RandomSample() float64 {
	a := r.Uint32() >> 5
	b := r.Uint32() >> 6
	return (float64(a)*67108864.0 + float64(b)) / 9007199254740992.0
}

// Uniform returns np.random.uniform(low, high): low + (high−low)·random_sample(), with the
// range computed once in float64 as NumPy does. The explicit float64 conversion keeps the
// compiler from fusing the multiply-add, which NumPy's C build does not do either.
func (r *RandomState) Uniform(low, high float64) float64 {
	span := high - low
	return low + float64(span*r.RandomSample())
}

// interval returns a uniform integer in [0, max] by masked rejection sampling, NumPy's
// random_interval (used by shuffle and permutation).
func (r *RandomState) interval(max uint64) uint64 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	mask |= mask >> 32
	if max <= 0xffffffff {
		for {
			v := uint64(r.Uint32()) & mask
			if v <= max {
				return v
			}
		}
	}
	for {
		v := r.uint64() & mask
		if v <= max {
			return v
		}
	}
}

// Shuffle permutes x in place exactly as RandomState.shuffle does on a 1-D array: Fisher–Yates
// from the last position down to 1, swapping x[i] with x[j], j uniform in [0, i].
func (r *RandomState) Shuffle(x []int) {
	for i := len(x) - 1; i >= 1; i-- {
		j := int(r.interval(uint64(i)))
		x[i], x[j] = x[j], x[i]
	}
}

// Permutation returns np.random.permutation(n): a shuffled 0..n−1. A negative n is an error,
// as NumPy's ValueError.
func (r *RandomState) Permutation(n int) ([]int, error) {
	if n < 0 {
		return nil, fmt.Errorf("datasets: permutation(%d): negative dimensions are not allowed", n)
	}
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.Shuffle(p)
	return p, nil
}
