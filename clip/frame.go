package clip

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"time"
)

const (
	chunkMagic = "OPX1"
	headerSize = 16

	// DefaultChunkSize and DefaultWindow suit a 4G uplink of a few Mbit/s
	// with a round trip under 200 ms: 8 chunks of 64 KiB in flight cover
	// 2.6 Mbit/s × 200 ms several times over.
	DefaultChunkSize = 64 << 10
	DefaultWindow    = 8
	// MaxChunkSize bounds what a receiver accepts.
	MaxChunkSize = 1 << 20
	// MaxChunks bounds a transfer's chunk count (and its bitmap).
	MaxChunks = 1 << 22
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Manifest describes a file ready to be sent.
type Manifest struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // "clip" (video/mp4) or "snapshot" (image/jpeg)
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"` // hex
	ChunkSize int       `json:"chunk_size"`
	Chunks    int       `json:"chunks"`
	Window    int       `json:"window"`
	Frames    int       `json:"frames,omitempty"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	// Evidence is the unit's signed evidence manifest of the file
	// (package evidence), when the unit has an evidence key.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks a manifest received from a unit.
func (m Manifest) Validate() error {
	switch {
	case !idRe.MatchString(m.ID):
		return fmt.Errorf("clip: manifest: transfer id %q is not 1-64 of [A-Za-z0-9_-]", m.ID)
	case m.ChunkSize < 1 || m.ChunkSize > MaxChunkSize:
		return fmt.Errorf("clip: manifest: chunk size %d is outside 1-%d", m.ChunkSize, MaxChunkSize)
	case m.Size < 0 || m.Chunks != chunkCount(m.Size, m.ChunkSize):
		return fmt.Errorf("clip: manifest: %d chunks do not fit %d bytes in chunks of %d", m.Chunks, m.Size, m.ChunkSize)
	case m.Chunks > MaxChunks:
		return fmt.Errorf("clip: manifest: %d chunks is above the limit %d", m.Chunks, MaxChunks)
	case len(m.SHA256) != 64:
		return fmt.Errorf("clip: manifest: sha256 %q is not 64 hex digits", m.SHA256)
	}
	return nil
}

func chunkCount(size int64, chunk int) int {
	if chunk <= 0 {
		return -1
	}
	return int((size + int64(chunk) - 1) / int64(chunk))
}

// chunkLen is the length of chunk i.
func (m Manifest) chunkLen(i int) int {
	if i == m.Chunks-1 {
		if r := int(m.Size % int64(m.ChunkSize)); r != 0 {
			return r
		}
	}
	return m.ChunkSize
}

// EncodeChunk frames chunk index of count around data.
func EncodeChunk(dst []byte, index, count int, data []byte) []byte {
	dst = append(dst[:0], chunkMagic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(index))
	dst = binary.BigEndian.AppendUint32(dst, uint32(count))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(data, castagnoli))
	return append(dst, data...)
}

// Errors from DecodeChunk. ErrChunkCorrupt means the frame was whole but its
// data failed the CRC: the receiver asks for it again.
var (
	ErrChunkFrame   = errors.New("clip: not a chunk frame")
	ErrChunkCorrupt = errors.New("clip: chunk data failed its CRC")
)

// DecodeChunk parses a chunk frame. The returned data aliases b.
func DecodeChunk(b []byte) (index, count int, data []byte, err error) {
	if len(b) < headerSize || string(b[:4]) != chunkMagic {
		return 0, 0, nil, fmt.Errorf("%w (%d bytes)", ErrChunkFrame, len(b))
	}
	index = int(binary.BigEndian.Uint32(b[4:]))
	count = int(binary.BigEndian.Uint32(b[8:]))
	if count > MaxChunks || index >= count {
		return 0, 0, nil, fmt.Errorf("%w: index %d of %d", ErrChunkFrame, index, count)
	}
	data = b[headerSize:]
	if crc32.Checksum(data, castagnoli) != binary.BigEndian.Uint32(b[12:]) {
		return index, count, nil, fmt.Errorf("%w: chunk %d", ErrChunkCorrupt, index)
	}
	return index, count, data, nil
}

// Ack is the control room's acknowledgement of chunks.
type Ack struct {
	// Next is the number of chunks received from the start without a gap.
	Next int `json:"next"`
	// Sack lists chunks received beyond Next.
	Sack []int `json:"sack,omitempty"`
	// Nack lists chunks to send again at once.
	Nack []int `json:"nack,omitempty"`
	// Done: the file arrived whole and verified; the unit may release it.
	Done bool `json:"done,omitempty"`
	// Cancel: the control room gave up; the unit stops sending.
	Cancel bool `json:"cancel,omitempty"`
}

// Topics of one transfer.
func ChunkTopic(unitBase, id string) string { return unitBase + "xfer/" + id + "/chunk" }

// AckTopic is where the control room acknowledges.
func AckTopic(unitBase, id string) string { return unitBase + "xfer/" + id + "/ack" }
