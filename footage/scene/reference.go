package scene

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"math"
	"time"
)

// Reference is the picture taken at commissioning, against which the view
// and the focus are judged. Its format on disk is in the package doc.
type Reference struct {
	// Taken is when the reference was taken.
	Taken time.Time
	// Luma is the 1/8-scale luma image.
	Luma *image.Gray
	// Sharpness is the AC sharpness of the frame (see the package doc),
	// 0 when the reference was taken from an image without its JPEG.
	Sharpness float64
}

const (
	refMagic      = "OPSCNREF"
	refVersion    = 1
	refHeader     = 32
	refMaxSide    = 2048
	flagSharpness = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Marshal returns r in the reference file format.
func (r Reference) Marshal() ([]byte, error) {
	if r.Luma == nil {
		return nil, errors.New("scene: reference has no image: commission the unit first")
	}
	w, h := r.Luma.Rect.Dx(), r.Luma.Rect.Dy()
	if w < 1 || h < 1 || w > refMaxSide || h > refMaxSide {
		return nil, fmt.Errorf("scene: reference image of %dx%d cells: must be 1-%d a side", w, h, refMaxSide)
	}
	b := make([]byte, 0, refHeader+w*h+4)
	b = append(b, refMagic...)
	b = binary.LittleEndian.AppendUint16(b, refVersion)
	var flags uint16
	if r.Sharpness > 0 {
		flags |= flagSharpness
	}
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(w))
	b = binary.LittleEndian.AppendUint16(b, uint16(h))
	var taken int64
	if !r.Taken.IsZero() {
		taken = r.Taken.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(taken))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(max(r.Sharpness, 0)))
	for y := 0; y < h; y++ {
		o := r.Luma.PixOffset(r.Luma.Rect.Min.X, r.Luma.Rect.Min.Y+y)
		b = append(b, r.Luma.Pix[o:o+w]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// UnmarshalReference reads a reference written by Marshal.
func UnmarshalReference(b []byte) (Reference, error) {
	const retake = "commission the unit again to take a new reference"
	if len(b) < refHeader+4 || string(b[:8]) != refMagic {
		return Reference{}, fmt.Errorf("scene: not a scene reference file (%d bytes, no %q header): %s", len(b), refMagic, retake)
	}
	le := binary.LittleEndian
	if v := le.Uint16(b[8:]); v != refVersion {
		return Reference{}, fmt.Errorf("scene: reference file version %d: this agent reads version %d; %s", v, refVersion, retake)
	}
	flags := le.Uint16(b[10:])
	w, h := int(le.Uint16(b[12:])), int(le.Uint16(b[14:]))
	if w < 1 || h < 1 || w > refMaxSide || h > refMaxSide {
		return Reference{}, fmt.Errorf("scene: reference file of %dx%d cells: the file is damaged; %s", w, h, retake)
	}
	if len(b) != refHeader+w*h+4 {
		return Reference{}, fmt.Errorf("scene: reference file is %d bytes, want %d for %dx%d cells: the file is damaged; %s", len(b), refHeader+w*h+4, w, h, retake)
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, crcTable), le.Uint32(b[len(b)-4:]); got != want {
		return Reference{}, fmt.Errorf("scene: reference file CRC %08x, want %08x: the file is damaged; %s", got, want, retake)
	}
	if flags&^flagSharpness != 0 {
		return Reference{}, fmt.Errorf("scene: reference file flags %#04x: written by a newer agent or damaged; %s", flags, retake)
	}
	r := Reference{Luma: image.NewGray(image.Rect(0, 0, w, h))}
	if ns := int64(le.Uint64(b[16:])); ns != 0 {
		r.Taken = time.Unix(0, ns).UTC()
	}
	s := math.Float64frombits(le.Uint64(b[24:]))
	switch {
	case flags&flagSharpness != 0 && (!(s > 0) || math.IsInf(s, 0)),
		flags&flagSharpness == 0 && le.Uint64(b[24:]) != 0:
		return Reference{}, fmt.Errorf("scene: reference file sharpness %v does not match its flags: the file is damaged; %s", s, retake)
	}
	r.Sharpness = s
	copy(r.Luma.Pix, body[refHeader:])
	return r, nil
}
