package vedirect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Limits from the VE.Direct protocol description, with a margin: labels are
// at most 9 bytes and values at most 33.
const (
	maxLabel  = 16
	maxValue  = 64
	maxFields = 64
	maxHex    = 512
)

// Field is one label and its raw value.
type Field struct {
	Label string
	Value string
}

// Block is the fields of one block whose checksum was right, in the order
// received, without the Checksum field.
type Block []Field

// Get returns the value of the field with the given label.
func (b Block) Get(label string) (string, bool) {
	for _, f := range b {
		if f.Label == label {
			return f.Value, true
		}
	}
	return "", false
}

// ErrBadBlock is wrapped by every [*BlockError].
var ErrBadBlock = errors.New("vedirect: bad block")

// BlockError says why a block was discarded. Decoding may continue after
// it.
type BlockError struct {
	Reason string
}

func (e *BlockError) Error() string { return "vedirect: block discarded: " + e.Reason }

// Unwrap returns [ErrBadBlock].
func (e *BlockError) Unwrap() error { return ErrBadBlock }

type state int

const (
	stIdle state = iota
	stBegin
	stLabel
	stValue
	stChecksum
	stHex
)

// Decoder splits a VE.Direct byte stream into blocks.
type Decoder struct {
	r io.ByteReader

	st, prev state
	sum      byte
	lastCR   bool
	label    []byte
	value    []byte
	fields   Block
	hexLen   int
}

// NewDecoder returns a decoder reading from r. It buffers r.
func NewDecoder(r io.Reader) *Decoder {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = bufio.NewReaderSize(r, 512)
	}
	return &Decoder{r: br}
}

// Next returns the next block whose checksum is right. A discarded block is
// returned as a *BlockError and the caller may call Next again; any other
// error is the reader's, returned as is.
func (d *Decoder) Next() (Block, error) {
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return nil, err
		}
		b, err := d.feed(c)
		if b != nil || err != nil {
			return b, err
		}
	}
}

func (d *Decoder) reset() {
	d.st = stIdle
	d.sum = 0
	d.label = d.label[:0]
	d.value = d.value[:0]
	d.fields = nil
}

func (d *Decoder) fail(format string, args ...any) error {
	err := &BlockError{Reason: fmt.Sprintf(format, args...)}
	d.reset()
	return err
}

// idle handles c while waiting for the start of a block: a block starts at
// "\r\n" (or a bare "\n"), and nothing before it is counted.
func (d *Decoder) idle(c byte) {
	d.st = stIdle
	switch c {
	case '\r':
		d.sum, d.lastCR = '\r', true
	case '\n':
		d.sum = '\n'
		if d.lastCR {
			d.sum += '\r'
		}
		d.lastCR = false
		d.st = stBegin
	default:
		d.sum, d.lastCR = 0, false
	}
}

// feed consumes one byte, returning a complete block or the reason one was
// discarded.
func (d *Decoder) feed(c byte) (Block, error) {
	if c == ':' && d.st != stChecksum && d.st != stHex {
		d.prev, d.st, d.hexLen = d.st, stHex, 0
	}
	if d.st == stHex {
		d.hexLen++
		if c == '\n' {
			d.st = d.prev
		} else if d.hexLen > maxHex {
			return nil, d.fail("hex frame longer than %d bytes", maxHex)
		}
		return nil, nil
	}
	d.sum += c
	switch d.st {
	case stIdle:
		d.idle(c)
	case stBegin:
		switch c {
		case '\r', '\n':
			// A blank line: start again from here, losing only what was
			// collected so far.
			var err error
			if len(d.fields) > 0 {
				err = d.fail("blank line after %d fields", len(d.fields))
			}
			d.reset()
			d.idle(c)
			return nil, err
		case '\t':
			return nil, d.fail("empty label")
		}
		d.label = append(d.label[:0], c)
		d.st = stLabel
	case stLabel:
		switch c {
		case '\t':
			if string(d.label) == "Checksum" {
				d.st = stChecksum
			} else {
				d.value = d.value[:0]
				d.st = stValue
			}
		case '\r', '\n':
			err := d.fail("label %q without a value", d.label)
			d.idle(c)
			return nil, err
		default:
			if len(d.label) >= maxLabel {
				return nil, d.fail("label longer than %d bytes", maxLabel)
			}
			d.label = append(d.label, c)
		}
	case stValue:
		switch c {
		case '\n':
			if len(d.fields) >= maxFields {
				return nil, d.fail("more than %d fields", maxFields)
			}
			d.fields = append(d.fields, Field{Label: string(d.label), Value: string(d.value)})
			d.st = stBegin
		case '\r':
		default:
			if len(d.value) >= maxValue {
				return nil, d.fail("value of %q longer than %d bytes", d.label, maxValue)
			}
			d.value = append(d.value, c)
		}
	case stChecksum:
		sum, fields := d.sum, d.fields
		d.reset()
		if sum != 0 {
			return nil, &BlockError{Reason: fmt.Sprintf("checksum off by %d", sum)}
		}
		if len(fields) == 0 {
			return nil, &BlockError{Reason: "no fields"}
		}
		return fields, nil
	}
	return nil, nil
}

// AppendBlock appends b in wire format, with its checksum, to dst. It is
// what a device sends; tests and simulators use it.
func AppendBlock(dst []byte, b Block) []byte {
	start := len(dst)
	for _, f := range b {
		dst = append(dst, "\r\n"...)
		dst = append(dst, f.Label...)
		dst = append(dst, '\t')
		dst = append(dst, f.Value...)
	}
	dst = append(dst, "\r\nChecksum\t"...)
	var sum byte
	for _, c := range dst[start:] {
		sum += c
	}
	return append(dst, -sum)
}
