package datasets

import "testing"

func TestScheduleDraws(t *testing.T) {
	for _, c := range []struct{ n, batch, batches, draws, distinct int }{
		// The book's schedule on the full data set: 10×100 training batches over 10,764 images
		// (337 batches per pass, the last of 12 images), 10×30 validation batches over 2,674.
		{10764, 32, 1000, 2*10764 + 326*32, 10764},
		{2674, 32, 300, 3*2674 + 48*32, 2674},
		// Within the first pass every image is new.
		{10764, 32, 100, 3200, 3200},
		// The sample: 80 images are 3 batches (32, 32, 16) per pass.
		{80, 32, 2, 64, 64},
		{80, 32, 4, 80 + 32, 80},
	} {
		d, u := ScheduleDraws(c.n, c.batch, c.batches)
		if d != c.draws || u != c.distinct {
			t.Errorf("ScheduleDraws(%d, %d, %d) = %d, %d; want %d, %d", c.n, c.batch, c.batches, d, u, c.draws, c.distinct)
		}
	}
}
