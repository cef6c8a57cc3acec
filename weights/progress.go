package weights

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress reports a download on a writer. On a terminal it redraws one line at most four
// times a second; elsewhere (notebook outputs, CI logs) it writes a line at the start, at each
// quarter and at the end, so logs stay short.
type progress struct {
	w       io.Writer
	tty     bool
	name    string
	total   int64
	done    int64
	start   time.Time
	last    time.Time
	quarter int64
}

func newProgress(w io.Writer, entry File, total int64) *progress {
	p := &progress{w: w, name: entry.Name, total: total, start: time.Now()}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	size := "size unknown"
	if total >= 0 {
		size = mb(total)
	}
	fmt.Fprintf(w, "Downloading %s from %s (%s)\n", entry.Name, entry.URL, size)
	return p
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func (p *progress) rate() string {
	s := time.Since(p.start).Seconds()
	if s <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB/s", float64(p.done)/1e6/s)
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.w == nil {
		return len(b), nil
	}
	now := time.Now()
	switch {
	case p.tty:
		if now.Sub(p.last) < 250*time.Millisecond {
			return len(b), nil
		}
		p.last = now
		if p.total > 0 {
			fmt.Fprintf(p.w, "\r  %s / %s (%3d%%)  %s   ", mb(p.done), mb(p.total), p.done*100/p.total, p.rate())
		} else {
			fmt.Fprintf(p.w, "\r  %s  %s   ", mb(p.done), p.rate())
		}
	case p.total > 0:
		if q := p.done * 4 / p.total; q > p.quarter && q < 4 {
			p.quarter = q
			fmt.Fprintf(p.w, "  %s: %d%% (%s of %s, %s)\n", p.name, q*25, mb(p.done), mb(p.total), p.rate())
		}
	}
	return len(b), nil
}

func (p *progress) finish(verified bool) {
	if p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	check := ""
	if verified {
		check = ", md5 verified"
	}
	fmt.Fprintf(p.w, "Downloaded %s: %s in %.1f s (%s)%s\n", p.name, mb(p.done), time.Since(p.start).Seconds(), p.rate(), check)
}

func (p *progress) abort() {
	if p.w != nil && p.tty {
		fmt.Fprintln(p.w)
	}
}
