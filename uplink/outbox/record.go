package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

const (
	magic      = "OUTPOSTQ"
	version    = 1
	headerSize = 16
	frameSize  = 8
	// maxBody bounds a record so that a damaged length is recognised
	// before anything is allocated.
	maxBody = 4 << 20
)

// Record types.
const (
	recPut   = 'P'
	recAck   = 'A'
	recDrop  = 'D'
	recState = 'S'
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func fileHeader() []byte {
	h := make([]byte, headerSize)
	copy(h, magic)
	binary.LittleEndian.PutUint32(h[8:], version)
	return h
}

// frame wraps a body in its length and CRC.
func frame(body []byte) []byte {
	out := make([]byte, frameSize+len(body))
	binary.LittleEndian.PutUint32(out, uint32(len(body)))
	copy(out[frameSize:], body)
	crc := crc32.Update(crc32.Checksum(out[:4], crcTable), crcTable, body)
	binary.LittleEndian.PutUint32(out[4:], crc)
	return out
}

var (
	errShort = errors.New("record cut short")
	errCRC   = errors.New("record fails its CRC")
)

// unframe reads the record at the start of b and returns its body and
// total size.
func unframe(b []byte) (body []byte, size int, err error) {
	if len(b) < frameSize {
		return nil, 0, errShort
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxBody {
		return nil, 0, fmt.Errorf("record length %d is implausible: %w", n, errCRC)
	}
	if uint64(len(b)) < uint64(frameSize)+uint64(n) {
		return nil, 0, errShort
	}
	body = b[frameSize : frameSize+int(n)]
	crc := crc32.Update(crc32.Checksum(b[:4], crcTable), crcTable, body)
	if crc != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errCRC
	}
	return body, frameSize + int(n), nil
}

// record is a decoded body.
type record struct {
	typ      byte
	id       uint64
	created  time.Time
	retained bool
	class    Class
	topic    string
	payload  []byte
	nextID   uint64
	dropped  map[Class]uint64
}

type encoder struct{ b []byte }

func (e *encoder) u8(v byte)    { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) str8(s string) {
	e.u8(byte(len(s)))
	e.b = append(e.b, s...)
}

func encodePut(id uint64, m Message, created time.Time) []byte {
	e := encoder{b: make([]byte, 0, 32+len(m.Class)+len(m.Topic)+len(m.Payload))}
	e.u8(recPut)
	e.u64(id)
	e.u64(uint64(created.UnixMilli()))
	var flags byte
	if m.Retained {
		flags |= 1
	}
	e.u8(flags)
	e.str8(string(m.Class))
	e.u16(uint16(len(m.Topic)))
	e.b = append(e.b, m.Topic...)
	e.u32(uint32(len(m.Payload)))
	e.b = append(e.b, m.Payload...)
	return frame(e.b)
}

func encodeAck(id uint64) []byte {
	e := encoder{}
	e.u8(recAck)
	e.u64(id)
	return frame(e.b)
}

func encodeDrop(id uint64, c Class) []byte {
	e := encoder{}
	e.u8(recDrop)
	e.u64(id)
	e.str8(string(c))
	return frame(e.b)
}

func encodeState(next uint64, dropped map[Class]uint64) []byte {
	e := encoder{}
	e.u8(recState)
	e.u64(next)
	for _, c := range Classes() {
		e.str8(string(c))
		e.u64(dropped[c])
	}
	return frame(e.b)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = errors.New("record body cut short")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) str8() string { return string(d.take(int(d.u8()))) }

// decode parses a record body. Unknown classes and types are errors: they
// mean damage that passed the CRC, or a newer format.
func decode(body []byte) (record, error) {
	d := decoder{b: body}
	r := record{typ: d.u8()}
	switch r.typ {
	case recPut:
		r.id = d.u64()
		r.created = time.UnixMilli(int64(d.u64())).UTC()
		r.retained = d.u8()&1 != 0
		r.class = Class(d.str8())
		r.topic = string(d.take(int(d.u16())))
		r.payload = d.take(int(d.u32()))
		if d.err == nil && !ValidClass(r.class) {
			d.err = fmt.Errorf("unknown class %q", r.class)
		}
	case recAck:
		r.id = d.u64()
	case recDrop:
		r.id = d.u64()
		r.class = Class(d.str8())
		if d.err == nil && !ValidClass(r.class) {
			d.err = fmt.Errorf("unknown class %q", r.class)
		}
	case recState:
		r.nextID = d.u64()
		r.dropped = map[Class]uint64{}
		for d.err == nil && len(d.b) > 0 {
			c := Class(d.str8())
			n := d.u64()
			if ValidClass(c) {
				r.dropped[c] = n
			}
		}
	default:
		return r, fmt.Errorf("unknown record type %#x", r.typ)
	}
	if d.err == nil && len(d.b) != 0 && r.typ != recState {
		d.err = errors.New("record body has trailing bytes")
	}
	return r, d.err
}
