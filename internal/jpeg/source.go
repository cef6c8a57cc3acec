package jpeg

import (
	"encoding/binary"
	"fmt"
	"io"
)

// errTruncated is returned when the data ends before the End Of Image marker.
// libjpeg only warns here and pads with gray, and Pillow turns that into an
// error unless ImageFile.LOAD_TRUNCATED_IMAGES is set, so an error matches
// what Keras users see.
var errTruncated = fmt.Errorf("jpeg: truncated data: %w", io.ErrUnexpectedEOF)

// errEarlyMarker means a scan needed more entropy-coded bits than there were
// before the next marker (T.81 B.1.1.5: 0xFF in coded data is always
// followed by a stuffed 0x00).
var errEarlyMarker = formatError("missing 0xff00 sequence (entropy-coded data ends early)")

// source buffers the input. Everything is read lazily, so DecodeConfig stops
// after the frame header; consumed bytes are dropped whenever the buffer has
// been used up, so memory stays at one read chunk for well-formed files.
type source struct {
	r   io.Reader
	buf []byte
	pos int // next unread byte in buf
}

const readChunk = 32 << 10

// more appends at least one byte from the reader to buf. Like bufio it
// tolerates a few empty reads, but not a reader that never makes progress.
func (s *source) more() error {
	if s.pos == len(s.buf) {
		s.buf, s.pos = s.buf[:0], 0
	}
	if cap(s.buf)-len(s.buf) < readChunk/2 {
		grown := make([]byte, len(s.buf), 2*cap(s.buf)+readChunk)
		copy(grown, s.buf)
		s.buf = grown
	}
	for range 100 {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if n > 0 {
			return nil
		}
		if err == io.EOF {
			return errTruncated
		}
		if err != nil {
			return fmt.Errorf("jpeg: read: %w", err)
		}
	}
	return fmt.Errorf("jpeg: read: %w", io.ErrNoProgress)
}

// readByte returns the next raw byte.
func (s *source) readByte() (byte, error) {
	if s.pos == len(s.buf) {
		if err := s.more(); err != nil {
			return 0, err
		}
	}
	c := s.buf[s.pos]
	s.pos++
	return c, nil
}

// take returns the next n raw bytes. The slice is only valid until the next
// call on s.
func (s *source) take(n int) ([]byte, error) {
	for len(s.buf)-s.pos < n {
		if err := s.more(); err != nil {
			return nil, err
		}
	}
	p := s.buf[s.pos : s.pos+n]
	s.pos += n
	return p, nil
}

// skip discards the next n raw bytes.
func (s *source) skip(n int) error {
	for {
		k := min(n, len(s.buf)-s.pos)
		s.pos += k
		n -= k
		if n == 0 {
			return nil
		}
		if err := s.more(); err != nil {
			return err
		}
	}
}

// bitReader delivers the entropy-coded bits of one scan (T.81 F.2.2.5),
// removing the stuffed zero after each 0xFF data byte. acc holds the next
// bits MSB-first; below its n valid bits it is zero. When the coded data
// stops (a marker or the end of the input) the reader keeps appending zero
// bytes, as libjpeg does, but counts them in pad: a decode that ends up
// consuming any of them (n < pad) read past the segment and is an error,
// reported by overrun. Peeking into the padding is harmless, so the Huffman
// look-ahead never needs a slow path near the end of a segment.
type bitReader struct {
	src  *source
	acc  uint64
	n    int   // valid bits in acc, padding included
	pad  int   // trailing zero bits that are not data
	stop error // why padding began: errTruncated, errEarlyMarker or a read error
}

// reset drops buffered bits, at the start of a scan or restart interval.
func (br *bitReader) reset() {
	br.acc, br.n, br.pad, br.stop = 0, 0, 0, nil
}

// fill tops acc up to at least 57 bits.
func (br *bitReader) fill() {
	s := br.src
	if br.n <= 56 && br.stop == nil && s.pos+8 <= len(s.buf) {
		// Fast path: when none of the next 8 bytes is 0xFF (no stuffing or
		// marker), append as many whole bytes as fit in one go.
		v := binary.BigEndian.Uint64(s.buf[s.pos : s.pos+8])
		if x := ^v; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			k := (64 - br.n) >> 3
			keep := uint(64 - 8*k)
			br.acc |= v >> keep << keep >> br.n
			s.pos += k
			br.n += 8 * k
			return
		}
	}
	for br.n <= 56 {
		if br.stop != nil {
			br.n += 8
			br.pad += 8
			continue
		}
		if s.pos < len(s.buf) {
			c := s.buf[s.pos]
			if c != 0xff {
				s.pos++
				br.acc |= uint64(c) << (56 - br.n)
				br.n += 8
				continue
			}
			if s.pos+1 < len(s.buf) {
				if s.buf[s.pos+1] != 0 {
					br.stop = errEarlyMarker // The marker stays unread for the caller.
					continue
				}
				s.pos += 2
				br.acc |= 0xff << (56 - br.n)
				br.n += 8
				continue
			}
		}
		if err := s.more(); err != nil {
			br.stop = err
		}
	}
}

// overrun returns the reason the scan's data ended early if more bits were
// consumed than the segment holds, or nil.
func (br *bitReader) overrun() error {
	if br.n < br.pad {
		return br.stop
	}
	return nil
}

// bits returns the next k (0..16) bits as an unsigned number.
func (br *bitReader) bits(k int) int32 {
	if br.n < k {
		br.fill()
	}
	v := int32(br.acc >> (64 - k))
	br.acc <<= k
	br.n -= k
	return v
}

// bit returns the next bit.
func (br *bitReader) bit() bool {
	if br.n < 1 {
		br.fill()
	}
	v := br.acc>>63 != 0
	br.acc <<= 1
	br.n--
	return v
}

// receiveExtend reads a k-bit magnitude category value and maps it to its
// signed coefficient (T.81 F.2.2.1, procedures RECEIVE and EXTEND).
func (br *bitReader) receiveExtend(k int) int32 {
	if k == 0 {
		return 0
	}
	return extend(br.bits(k), k)
}

// extend maps the k-bit (k >= 1) magnitude category value v to its signed
// coefficient (T.81 F.2.2.1, procedure EXTEND): values below 2^(k-1) are
// negative, v + 1 - 2^k. The sign is random data, so this is computed
// without a branch: m is -1 exactly when v < 2^(k-1).
func extend(v int32, k int) int32 {
	m := (v - 1<<(k-1)) >> 31
	return v + m&(1-1<<k)
}
