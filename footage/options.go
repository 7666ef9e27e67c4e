package footage

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
)

// Options configures a Store and its Recorder. OptionsFromConfig fills the
// fields that come from the agent's config; the others have defaults noted
// on each field, used when left zero.
type Options struct {
	// Recording (config.Recording).
	Mode              string // config.ModeContinuous, ModeEvents or ModeTimelapse
	PreRoll           time.Duration
	PostRoll          time.Duration
	TimelapseInterval time.Duration
	SegmentDuration   time.Duration
	SegmentMaxSize    int64
	SyncInterval      time.Duration
	MaxFrameSize      int64

	// Retention (config.Retention).
	MaxAge  time.Duration
	Quota   config.SizeOrPercent
	MinFree config.SizeOrPercent
	HoldCap config.SizeOrPercent

	// ReadOnly opens the store for reading only: no lock, no recovery
	// writes, no eviction. The command line uses it while the agent may
	// be recording.
	ReadOnly bool
	// FS is the file system; default OSFS.
	FS FS
	// QueueLen bounds the frames waiting between the camera and the
	// recorder's goroutine; more are dropped and counted. Default 64
	// (2.5 s at 25 fps, enough to ride out a slow sync of an SD card).
	QueueLen int
	// PreRollMaxBytes bounds the RAM the pre-roll ring may hold; the
	// oldest frames go first. Default 64 MiB.
	PreRollMaxBytes int64
	// MaintainEvery is how often retention runs. Default 30 s.
	MaintainEvery time.Duration
	// StepThreshold is the disagreement between the wall clock and the
	// monotonic clock, between two frames, that counts as a clock step.
	// Default 2 s.
	StepThreshold time.Duration
	// Monotonic reads a monotonic clock (default: time since the process
	// started, from Go's monotonic clock). Tests inject one.
	Monotonic func() time.Duration
	// Signer signs the head of the chain of sealed segments (see doc.go,
	// Chain) every HeadEvery and at close: the unit's evidence key,
	// agent/identity.Key. Without one the chain is kept unsigned.
	Signer Signer
	// HeadEvery is how often the chain's head is signed while it grows.
	// Default 10 min.
	HeadEvery time.Duration
	// UnitID names the unit in signed heads; optional.
	UnitID string
	// KeyFile, when set, is the footage encryption key's file
	// (config.Privacy.EncryptionKeyFile): Open reads it with LoadKey and
	// refuses to open the store if it cannot, so that footage is never
	// recorded in clear when encryption was asked for. New segments are
	// then encrypted (see doc.go, Encryption at rest); segments recorded
	// in clear before stay readable.
	KeyFile string
	// EncryptionKey is the key itself (KeySize bytes), for callers that
	// hold it; it takes the place of KeyFile. Without either, segments are
	// written in clear, and reading encrypted ones fails with ErrNoKey
	// (listing, retention, holds and Verify still work).
	EncryptionKey []byte
	// OnFault is told of each fault raised or cleared. It is called on
	// the store's or recorder's goroutine and must not block.
	OnFault func(Fault)
}

// OptionsFromConfig returns the options for the agent's config.
func OptionsFromConfig(rec config.Recording, ret config.Retention) Options {
	return Options{
		Mode:              rec.Mode,
		PreRoll:           rec.PreRoll.D(),
		PostRoll:          rec.PostRoll.D(),
		TimelapseInterval: rec.TimelapseInterval.D(),
		SegmentDuration:   rec.SegmentDuration.D(),
		SegmentMaxSize:    int64(rec.SegmentMaxSize),
		SyncInterval:      rec.SyncInterval.D(),
		MaxFrameSize:      int64(rec.MaxFrameSize),
		MaxAge:            ret.MaxAge.D(),
		Quota:             ret.Quota,
		MinFree:           ret.MinFree,
		HoldCap:           ret.HoldCap,
	}
}

// DefaultOptions are the options of the default config.
func DefaultOptions() Options {
	d := config.Default()
	return OptionsFromConfig(d.Recording, d.Retention)
}

// Dir is where the footage store lives inside the agent's data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "footage") }

var processStart = time.Now()

func (o *Options) fill() error {
	d := DefaultOptions()
	if o.Mode == "" {
		o.Mode = d.Mode
	}
	switch o.Mode {
	case config.ModeContinuous, config.ModeEvents, config.ModeTimelapse:
	default:
		return fmt.Errorf("footage: recording mode %q is not one of continuous, events, timelapse", o.Mode)
	}
	if o.SegmentDuration <= 0 {
		o.SegmentDuration = d.SegmentDuration
	}
	if o.SegmentMaxSize <= 0 {
		o.SegmentMaxSize = d.SegmentMaxSize
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = d.SyncInterval
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = d.MaxFrameSize
	}
	if o.MaxFrameSize > maxRecord-sealOverhead {
		return fmt.Errorf("footage: max frame size %d is above the format's limit %d", o.MaxFrameSize, maxRecord-sealOverhead)
	}
	if o.TimelapseInterval <= 0 {
		o.TimelapseInterval = d.TimelapseInterval
	}
	if o.MaxAge <= 0 {
		o.MaxAge = d.MaxAge
	}
	if o.Quota == (config.SizeOrPercent{}) {
		o.Quota = d.Quota
	}
	if o.HoldCap == (config.SizeOrPercent{}) {
		o.HoldCap = d.HoldCap
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 64
	}
	if o.PreRollMaxBytes <= 0 {
		o.PreRollMaxBytes = 64 << 20
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = 30 * time.Second
	}
	if o.StepThreshold <= 0 {
		o.StepThreshold = 2 * time.Second
	}
	if o.HeadEvery <= 0 {
		o.HeadEvery = 10 * time.Minute
	}
	if len(o.UnitID) > 256 {
		return fmt.Errorf("footage: unit id of %d bytes is above the limit of 256", len(o.UnitID))
	}
	if o.Monotonic == nil {
		o.Monotonic = func() time.Duration { return time.Since(processStart) }
	}
	return nil
}
