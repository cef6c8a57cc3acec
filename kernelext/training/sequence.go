package training

import (
	"iter"
	"math/rand/v2"
	"sync"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/kernelext"
)

// SequenceGenerator feeds a datasets.DirectoryIterator to Fit the way Keras 2.3's
// fit_generator feeds a keras.utils.Sequence (which DirectoryIterator is): an OrderedEnqueuer
// requests batches 0 … len−1 of the iterator's current pass — in a random order when
// ShuffleBatchOrder (fit_generator's shuffle=True, its default; the book passes shuffle=False) —
// then calls the iterator's on_epoch_end, which draws a new image permutation, and starts the
// next pass. Passes are independent of Fit's epochs: steps_per_epoch = 100 on a 337-batch pass
// (the book's run) makes each epoch continue where the previous one stopped.
//
// Batches are decoded and augmented in the background while the model trains on the previous
// one (the iterator's Sequence prefetches).
type SequenceGenerator struct {
	it      *datasets.DirectoryIterator
	shuffle bool
	rng     *rand.Rand

	mu   sync.Mutex
	next func() (*datasets.Batch, error, bool)
	stop func()
}

// NewSequenceGenerator wraps it. shuffleBatchOrder is fit_generator's shuffle argument; the
// batch order then comes from a clock-seeded generator, as Python's unseeded random.shuffle.
func NewSequenceGenerator(it *datasets.DirectoryIterator, shuffleBatchOrder bool) *SequenceGenerator {
	return &SequenceGenerator{it: it, shuffle: shuffleBatchOrder, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Len is the number of batches per pass (Keras len(iterator)).
func (s *SequenceGenerator) Len() int { return s.it.Len() }

// Next implements Generator.
func (s *SequenceGenerator) Next() (x, y *kernelext.Array, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.next == nil {
			order := make([]int, s.it.Len())
			for i := range order {
				order[i] = i
			}
			if s.shuffle {
				s.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			s.next, s.stop = iter.Pull2(iter.Seq2[*datasets.Batch, error](s.it.Sequence(order)))
		}
		b, err, ok := s.next()
		if !ok {
			s.stop()
			s.next, s.stop = nil, nil
			s.it.OnEpochEnd()
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return b.X, b.Y, nil
	}
}

// Close stops the background preparation of the current pass (the iterator stays usable).
func (s *SequenceGenerator) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.next, s.stop = nil, nil
	}
}

// NextGenerator feeds a datasets.DirectoryIterator to Fit through its Next method — Keras'
// plain Python-iterator protocol, used when the iterator is given to fit_generator as an
// ordinary generator (no Sequence enqueuer).
type NextGenerator struct{ It *datasets.DirectoryIterator }

// Next implements Generator.
func (g NextGenerator) Next() (x, y *kernelext.Array, err error) {
	b, err := g.It.Next()
	if err != nil {
		return nil, nil, err
	}
	return b.X, b.Y, nil
}

// Len is the number of batches per pass.
func (g NextGenerator) Len() int { return g.It.Len() }
