package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Kinds of transfer.
const (
	KindClip     = "clip"     // an MP4 export of a time range
	KindSnapshot = "snapshot" // a JPEG of one frame
)

// StartArgs are the arguments of the transfer.start command.
type StartArgs struct {
	// ID names the transfer; the same request gets the same id (TransferID)
	// so that running it again resumes it.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// From and To bound a clip; or Event names a recorded event (its
	// sequence number in events.list) whose pre-roll to post-roll the unit
	// sends.
	From  time.Time `json:"from,omitzero"`
	To    time.Time `json:"to,omitzero"`
	Event uint64    `json:"event,omitempty"`
	// At picks a snapshot's frame; zero means the latest frame.
	At time.Time `json:"at,omitzero"`
	// Full asks for the snapshot at full size rather than a reduced one.
	Full      bool `json:"full,omitempty"`
	ChunkSize int  `json:"chunk_size,omitempty"`
	Window    int  `json:"window,omitempty"`
	// Have is the bitmap of chunks already received (Bitmap.Encode) of the
	// file whose hash is HaveSHA256; the unit ignores it for another file.
	Have       string `json:"have,omitempty"`
	HaveSHA256 string `json:"have_sha256,omitempty"`
	// UploadURL, when set, asks the unit to PUT the file there (e.g. a
	// presigned object-storage URL) instead of sending it over MQTT.
	UploadURL string `json:"upload_url,omitempty"`
	// Recipient and Reason say who the footage is disclosed to and why
	// (the disclosure log the ICO expects); they go into the unit's audit
	// trail and the signed evidence manifest.
	Recipient string `json:"recipient,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// MaxClip bounds the range of one clip request.
const MaxClip = 2 * time.Hour

// Validate checks the arguments as the unit receives them.
func (a StartArgs) Validate() error {
	if !idRe.MatchString(a.ID) {
		return fmt.Errorf("id %q must be 1-64 of [A-Za-z0-9_-]", a.ID)
	}
	switch a.Kind {
	case KindClip:
		if a.Event != 0 {
			if !a.From.IsZero() || !a.To.IsZero() {
				return fmt.Errorf("give a clip's event or its from and to, not both")
			}
			break
		}
		if a.From.IsZero() || a.To.IsZero() {
			return fmt.Errorf("a clip needs from and to, or an event")
		}
		if !a.To.After(a.From) {
			return fmt.Errorf("to (%s) is not after from (%s)", a.To.Format(time.RFC3339), a.From.Format(time.RFC3339))
		}
		if a.To.Sub(a.From) > MaxClip {
			return fmt.Errorf("a clip of %s is longer than the limit %s: pull it in parts", a.To.Sub(a.From), MaxClip)
		}
	case KindSnapshot:
	default:
		return fmt.Errorf("kind %q is not clip or snapshot", a.Kind)
	}
	if len(a.Recipient) > 200 || len(a.Reason) > 500 {
		return fmt.Errorf("recipient (%d bytes) or reason (%d bytes) is too long: at most 200 and 500", len(a.Recipient), len(a.Reason))
	}
	if a.ChunkSize < 0 || a.ChunkSize > MaxChunkSize {
		return fmt.Errorf("chunk_size %d is outside 1-%d", a.ChunkSize, MaxChunkSize)
	}
	if a.Window < 0 || a.Window > 256 {
		return fmt.Errorf("window %d is outside 1-256", a.Window)
	}
	return nil
}

// TransferID derives the id of a request, so that the same pull of the
// same unit finds its earlier, interrupted transfer.
func TransferID(unit string, a StartArgs) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%d|%d|%d|%t|%d", unit, a.Kind, a.From.UnixNano(), a.To.UnixNano(), a.At.UnixNano(), a.Full, a.Event)
	return a.Kind + "-" + hex.EncodeToString(h.Sum(nil))[:24]
}
