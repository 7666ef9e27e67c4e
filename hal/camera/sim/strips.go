package sim

// Frames are encoded one MCU row (a strip 16 pixels high) at a time and
// joined with JPEG restart markers. A restart resets the entropy coder, so a
// strip encoded on its own is exactly what the full frame needs at that
// place. A motion frame then only re-encodes the strips the van covers and
// borrows the rest from a static frame: at 1920x1080 that is about a quarter
// of the work, which keeps start-up short on a small board.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"runtime"
	"sync"
)

// stripHeight is the height of an MCU row with 4:2:0 chroma, the layout
// image/jpeg writes for colour images.
const stripHeight = 16

// maxEncoders bounds the goroutines encoding strips at start-up.
const maxEncoders = 8

// JPEG markers used when joining strips.
const (
	markerSOF0 = 0xC0
	markerRST0 = 0xD0
	markerSOI  = 0xD8
	markerEOI  = 0xD9
	markerSOS  = 0xDA
	markerDRI  = 0xDD
)

// stripJob is one strip to render and encode.
type stripJob struct {
	row  int    // strip index from the top
	seed uint64 // noise seed
	van  bool   // draw the van...
	vanX int    // ...with its rear at this x
	out  *[]byte
}

// encodeStrips renders and encodes every job's strip on a bounded number of
// goroutines, all of which have returned when it does. It stores each
// strip's entropy-coded data in the job's out and returns the JPEG header
// (everything up to the scan data) of a full frame, restart interval
// included.
func encodeStrips(l layout, quality int, jobs []stripJob) ([]byte, error) {
	if len(jobs) == 0 {
		return nil, errors.New("camera sim: nothing to encode")
	}
	workers := min(runtime.GOMAXPROCS(0), maxEncoders, len(jobs))
	next := make(chan *stripJob)
	errs := make([]error, workers)
	headers := make([][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := image.NewYCbCr(image.Rect(0, 0, l.w, stripHeight), image.YCbCrSubsampleRatio420)
			var buf bytes.Buffer
			for j := range next {
				if errs[w] != nil {
					continue // keep draining so the feeder never blocks
				}
				y0 := j.row * stripHeight
				strip := *scratch
				strip.Rect = image.Rect(0, y0, l.w, min(y0+stripHeight, l.h))
				drawScene(&strip, l, j.van, j.vanX)
				addNoise(&strip, j.seed)
				buf.Reset()
				if err := jpeg.Encode(&buf, &strip, &jpeg.Options{Quality: quality}); err != nil {
					errs[w] = fmt.Errorf("camera sim: encoding strip %d: %w", j.row, err)
					continue
				}
				hdr, data, err := splitJPEG(buf.Bytes())
				if err != nil {
					errs[w] = err
					continue
				}
				*j.out = bytes.Clone(data)
				if j.row == 0 && headers[w] == nil {
					headers[w] = bytes.Clone(hdr)
				}
			}
		}()
	}
	for i := range jobs {
		next <- &jobs[i]
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, h := range headers {
		if h != nil {
			return frameHeader(h, l)
		}
	}
	return nil, errors.New("camera sim: no strip at the top of the frame")
}

// splitJPEG splits a JPEG written by image/jpeg into its header (SOI to the
// end of the SOS segment) and its entropy-coded scan data (without EOI).
func splitJPEG(b []byte) (header, data []byte, err error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != markerSOI {
		return nil, nil, errors.New("camera sim: encoder output has no SOI")
	}
	i := 2
	for {
		if i+4 > len(b) || b[i] != 0xFF {
			return nil, nil, fmt.Errorf("camera sim: encoder output: bad segment at byte %d", i)
		}
		m := b[i+1]
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		end := i + 2 + n
		if n < 2 || end > len(b) {
			return nil, nil, fmt.Errorf("camera sim: encoder output: bad length of segment %#x", m)
		}
		if m == markerSOS {
			if len(b) < end+2 || b[len(b)-2] != 0xFF || b[len(b)-1] != markerEOI {
				return nil, nil, errors.New("camera sim: encoder output has no EOI")
			}
			return b[:end], b[end : len(b)-2], nil
		}
		i = end
	}
}

// frameHeader turns the header of a strip into the header of a full frame:
// the frame height goes into SOF0 and a DRI segment setting one restart
// interval per MCU row goes before SOS.
func frameHeader(strip []byte, l layout) ([]byte, error) {
	mcusPerRow := (l.w + stripHeight - 1) / stripHeight
	if l.h > 0xFFFF || mcusPerRow > 0xFFFF {
		return nil, fmt.Errorf("camera sim: %dx%d too large for a JPEG", l.w, l.h)
	}
	var out []byte
	sof := false
	for i := 2; i+4 <= len(strip); {
		m := strip[i+1]
		end := i + 2 + int(binary.BigEndian.Uint16(strip[i+2:]))
		seg := bytes.Clone(strip[i:end])
		switch m {
		case markerSOF0:
			// FF C0, length, precision, height, width, ...
			binary.BigEndian.PutUint16(seg[5:], uint16(l.h))
			sof = true
		case markerSOS:
			if !sof {
				return nil, errors.New("camera sim: encoder output has no SOF0")
			}
			out = append(out, 0xFF, markerDRI, 0, 4)
			out = binary.BigEndian.AppendUint16(out, uint16(mcusPerRow))
		}
		out = append(out, seg...)
		i = end
	}
	return append([]byte{0xFF, markerSOI}, out...), nil
}

// joinStrips builds a frame from its header and strips, with RST0-RST7 in
// turn between strips.
func joinStrips(header []byte, strips [][]byte) []byte {
	n := len(header) + 2*len(strips) + 2
	for _, s := range strips {
		n += len(s)
	}
	out := make([]byte, 0, n)
	out = append(out, header...)
	for i, s := range strips {
		if i > 0 {
			out = append(out, 0xFF, markerRST0+byte((i-1)%8))
		}
		out = append(out, s...)
	}
	return append(out, 0xFF, markerEOI)
}
