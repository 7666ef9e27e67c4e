package footage

import (
	"time"
)

// Stats is the store's state for telemetry and listings.
type Stats struct {
	// BytesUsed is the size of the segments.
	BytesUsed int64 `json:"bytes_used"`
	Segments  int   `json:"segments"`
	// Oldest and Newest are the times of the oldest and newest frames
	// (those stamped by a set clock, when there are any).
	Oldest time.Time `json:"oldest"`
	Newest time.Time `json:"newest"`
	// SyncedSeq is the highest sequence known durable.
	SyncedSeq uint64 `json:"synced_seq"`

	// FramesReceived is the frames the recorder took from the camera.
	FramesReceived uint64 `json:"frames_received"`
	FramesWritten  uint64 `json:"frames_written"`
	// EventsWritten is the triggers recorded.
	EventsWritten uint64 `json:"events_written"`
	// FramesLost were written but cut after a failed sync.
	FramesLost uint64 `json:"frames_lost"`
	// FramesRefused were empty or above recording.max_frame_size.
	FramesRefused uint64 `json:"frames_refused"`
	// FramesDropped counts every frame the camera gave that was not
	// recorded for a fault: the recorder's queue was full, the disk was
	// full, a write failed, or the frame was refused. (Frames left out on
	// purpose by the events and timelapse modes are not counted.)
	FramesDropped uint64 `json:"frames_dropped"`
	// DroppedQueueFull, DroppedWriteFailed: the causes of FramesDropped
	// (with FramesRefused).
	DroppedQueueFull   uint64 `json:"dropped_queue_full"`
	DroppedWriteFailed uint64 `json:"dropped_write_failed"`
	WriteErrors        uint64 `json:"write_errors"`
	DamagedRecordsRead uint64 `json:"damaged_records_read"`

	Syncs            uint64        `json:"syncs"`
	SlowSyncs        uint64        `json:"slow_syncs"` // above 1 s
	LastSyncDuration time.Duration `json:"last_sync_ns"`
	MaxSyncDuration  time.Duration `json:"max_sync_ns"`

	EvictedSegments uint64 `json:"evicted_segments"`
	EvictedBytes    int64  `json:"evicted_bytes"`

	Holds     int   `json:"holds"`
	HeldBytes int64 `json:"held_bytes"`

	DiskTotal int64 `json:"disk_total"`
	DiskFree  int64 `json:"disk_free"`
	// WriteRate is bytes of footage written per second, over the last hour.
	WriteRate float64 `json:"write_rate"`
	// ProjectedRetentionDays is how many days of footage the space allowed
	// to unheld footage holds at the current write rate, at most
	// retention.max_age. It is 0 when unknown (no write rate yet, or no
	// disk figures).
	ProjectedRetentionDays float64 `json:"projected_retention_days"`
}

// Stats reports the store's state.
func (s *Store) Stats() Stats {
	total, free, derr := s.fsys.DiskUsage(s.dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	views := s.viewsLocked()
	st := Stats{
		Segments: len(views), SyncedSeq: s.synced,
		FramesWritten: s.st.framesWritten, EventsWritten: s.st.eventsWritten, FramesLost: s.st.framesLost, FramesRefused: s.st.refused,
		WriteErrors: s.st.writeErrors, DamagedRecordsRead: s.st.corruptRead,
		Syncs: s.st.syncs, SlowSyncs: s.st.slowSyncs, LastSyncDuration: s.st.lastSyncDur, MaxSyncDuration: s.st.maxSyncDur,
		EvictedSegments: s.st.evicted, EvictedBytes: s.st.evictedBytes,
		Holds: len(s.holds), HeldBytes: s.heldBytesLocked(views),
		WriteRate: s.rate.rateAt(s.clk.Now(), s.st.bytesWritten),
	}
	for _, v := range views {
		st.BytesUsed += v.sum.size
	}
	st.Oldest, st.Newest = spanOf(views, true)
	if derr == nil {
		st.DiskTotal, st.DiskFree = total, free
		st.ProjectedRetentionDays = projectDays(s.opts, total, free, st.BytesUsed, st.HeldBytes, st.WriteRate)
	}
	return st
}

// projectDays is the retention the disk allows at rate bytes per second:
// the space footage may take (the quota, or what keeping min_free leaves,
// whichever is less) less what is held, divided by the rate, capped at
// max_age.
func projectDays(o Options, total, free, used, held int64, rate float64) float64 {
	maxDays := o.MaxAge.Hours() / 24
	if rate <= 0 || total <= 0 {
		return 0
	}
	space := min(o.Quota.Of(total), used+free-o.MinFree.Of(total)) - held
	if space <= 0 {
		return 0
	}
	days := float64(space) / rate / 86400
	return min(days, maxDays)
}
