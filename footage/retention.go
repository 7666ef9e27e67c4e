package footage

import (
	"context"
	"fmt"
	"os"
	"time"
)

// MaintainReport says what one retention pass did.
type MaintainReport struct {
	Sealed        int   // segments sealed late (idle, or after a failed seal)
	Evicted       int   // segments deleted
	EvictedBytes  int64 //
	ByAge         int   // of which for retention.max_age
	Blocked       bool  // quota or free space could not be met: what is left is held or in use
	HeldBytes     int64
	UsedBytes     int64
	DiskFreeBytes int64
}

// Maintain runs retention once: it seals a segment left idle for a
// segment duration (or whose sealing failed), deletes footage past
// retention.max_age, then the oldest footage until the quota and the
// minimum free space are kept, never touching held footage or a segment
// being read, and updates the faults. The recorder runs it every
// MaintainEvery and at once when the disk is full.
func (s *Store) Maintain(ctx context.Context) (MaintainReport, error) {
	var rep MaintainReport
	if s.ro {
		return rep, ErrReadOnly
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return rep, ErrClosed
	}
	now := s.clk.Now()

	// Late sealing, under the writer's lock.
	s.wmu.Lock()
	if a := s.act; a != nil && a.seg.sum.records > 0 {
		s.mu.Lock()
		last := a.seg.idx[len(a.seg.idx)-1].time
		s.mu.Unlock()
		if time.Duration(now.UnixNano()-last) >= s.opts.SegmentDuration {
			if err := s.retire(true); err != nil {
				s.log.Warn("sealing idle segment failed; retrying later", "err", err)
			} else {
				rep.Sealed++
			}
		}
	}
	s.mu.Lock()
	var pending []*segment
	for _, seg := range s.segs {
		if !seg.sealed && (s.act == nil || s.act.seg != seg) {
			pending = append(pending, seg)
		}
	}
	s.mu.Unlock()
	for _, seg := range pending {
		if err := s.sealLate(seg); err != nil {
			s.log.Warn("sealing segment failed; retrying later", "segment", seg.name, "err", err)
		} else {
			rep.Sealed++
		}
	}
	s.wmu.Unlock()

	s.mu.Lock()
	s.rate.sample(now, s.st.bytesWritten)
	s.mu.Unlock()

	total, free, derr := s.fsys.DiskUsage(s.dir)
	if derr != nil {
		s.log.Debug("disk usage unknown; quota and free space not enforced", "err", derr)
	}
	rep.DiskFreeBytes = free

	// Choose what to evict, oldest first, under the lock; delete after.
	s.mu.Lock()
	views := s.viewsLocked()
	var used int64
	for _, v := range views {
		used += v.sum.size
	}
	evictable := func(v *segView) bool {
		// Sealed implies not being written.
		return v.seg.sealed && v.seg.pins == 0 && !s.heldLocked(v)
	}
	doomed := map[*segment]bool{}
	byAge := map[*segment]bool{}
	var order []*segment
	pick := func(v *segView) {
		doomed[v.seg] = true
		order = append(order, v.seg)
		used -= v.sum.size
		free += v.sum.size
	}
	if now.UnixNano() >= plausibleTime {
		cutoff := now.Add(-s.opts.MaxAge).UnixNano()
		// A segment stamped before the clock was set is as old as at
		// least the next segment with a set clock: real time only moves
		// forward, and sequences follow it.
		bound := int64(-1 << 63)
		ages := make([]int64, len(views))
		for i := len(views) - 1; i >= 0; i-- {
			v := &views[i]
			switch {
			case v.sum.frames > 0 && v.last >= plausibleTime:
				ages[i] = v.last
				bound = v.first
			case bound >= plausibleTime:
				ages[i] = bound
			default:
				ages[i] = now.UnixNano() // unknown: not evicted by age
			}
		}
		for i := range views {
			if ages[i] < cutoff && evictable(&views[i]) {
				pick(&views[i])
				byAge[views[i].seg] = true
				rep.ByAge++
			}
		}
	}
	if derr == nil && total > 0 {
		quota := s.opts.Quota.Of(total)
		minFree := s.opts.MinFree.Of(total)
		for i := range views {
			if used <= quota && free >= minFree {
				break
			}
			if !doomed[views[i].seg] && evictable(&views[i]) {
				pick(&views[i])
			}
		}
		rep.Blocked = used > quota || free < minFree
		rep.HeldBytes = s.heldBytesLocked(views)
		if rep.Blocked {
			s.faults.raise(FaultRetentionBlocked, fmt.Sprintf("footage takes %s with %s free, beyond retention.quota %s or retention.min_free %s, and what is left is held or being exported: release holds or free space on the card",
				fmtBytes(used), fmtBytes(free), s.opts.Quota, s.opts.MinFree), now)
		} else {
			s.faults.clear(FaultRetentionBlocked, now)
		}
		if limit := s.opts.HoldCap.Of(total); rep.HeldBytes > limit {
			s.faults.raise(FaultHoldCap, fmt.Sprintf("evidence holds keep %s, above retention.hold_cap %s (%s): nothing held is deleted; release holds that are no longer needed or raise the cap",
				fmtBytes(rep.HeldBytes), s.opts.HoldCap, fmtBytes(limit)), now)
		} else {
			s.faults.clear(FaultHoldCap, now)
		}
	}
	rep.UsedBytes = used
	for _, seg := range order {
		s.dropSegment(seg)
	}
	s.mu.Unlock()

	for _, seg := range order {
		if err := ctx.Err(); err != nil {
			// Put back what was not deleted.
			s.mu.Lock()
			s.reinsert(seg)
			s.mu.Unlock()
			continue
		}
		reason := "quota or min_free"
		if byAge[seg] {
			reason = "max_age"
		}
		if err := s.deleteSegment(seg, reason); err != nil {
			s.log.Warn("evicting segment failed", "segment", seg.name, "err", err)
			s.mu.Lock()
			s.reinsert(seg)
			s.mu.Unlock()
			continue
		}
		rep.Evicted++
		rep.EvictedBytes += seg.sum.size
	}
	if rep.Evicted > 0 {
		s.log.Info("retention evicted footage", "segments", rep.Evicted, "bytes", rep.EvictedBytes, "by_age", rep.ByAge)
		s.fsys.SyncDir(s.dir)
	}
	s.mu.Lock()
	s.st.evicted += uint64(rep.Evicted)
	s.st.evictedBytes += rep.EvictedBytes
	if s.man.needsCompaction() {
		if err := s.compactManifest(); err != nil {
			s.log.Warn("compacting the index file failed", "err", err)
		}
	}
	s.mu.Unlock()
	if s.chain.needsCompaction() {
		if err := s.chain.compact(); err != nil {
			s.log.Warn("compacting the chain journal failed", "err", err)
		}
	}
	s.maybeSignHead(false)
	s.updateDamageFault()
	return rep, ctx.Err()
}

// MakeRoom deletes the oldest footage that retention may delete (not
// held, not being read, not the segment being written) until at least
// want bytes are freed, and returns the bytes freed. The recorder calls it
// when a write finds the card full although the quota and min_free said
// there was room: the disk filled by other means.
func (s *Store) MakeRoom(ctx context.Context, want int64) (int64, error) {
	if s.ro {
		return 0, ErrReadOnly
	}
	s.mu.Lock()
	var order []*segment
	var freed int64
	for _, v := range s.viewsLocked() {
		if freed >= want {
			break
		}
		if v.seg.sealed && v.seg.pins == 0 && !s.heldLocked(&v) {
			order = append(order, v.seg)
			freed += v.sum.size
		}
	}
	for _, seg := range order {
		s.dropSegment(seg)
	}
	s.mu.Unlock()
	freed = 0
	for _, seg := range order {
		if err := s.deleteSegment(seg, "card full"); err != nil {
			s.mu.Lock()
			s.reinsert(seg)
			s.mu.Unlock()
			return freed, fmt.Errorf("footage: evict %s: %w", seg.name, err)
		}
		freed += seg.sum.size
		s.mu.Lock()
		s.st.evicted++
		s.st.evictedBytes += seg.sum.size
		s.mu.Unlock()
	}
	if len(order) > 0 {
		s.log.Warn("card full: evicted the oldest footage", "segments", len(order), "bytes", freed)
		s.fsys.SyncDir(s.dir)
	}
	return freed, ctx.Err()
}

func (s *Store) reinsert(seg *segment) {
	i := 0
	for i < len(s.segs) && s.segs[i].sum.firstSeq < seg.sum.firstSeq {
		i++
	}
	s.segs = append(s.segs, nil)
	copy(s.segs[i+1:], s.segs[i:])
	s.segs[i] = seg
}

// deleteSegment records the deletion of a segment in the chain, then
// removes its file and side files and records the deletion in the index
// file. When the card is too full to record it, the file is removed first
// (freeing room) and the record retried.
func (s *Store) deleteSegment(seg *segment, reason string) error {
	cerr := s.recordDeletion(seg, reason)
	if cerr != nil && !IsDiskFull(cerr) {
		return cerr
	}
	if err := s.fsys.Remove(join(s.dir, seg.name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	if cerr != nil {
		if err := s.recordDeletion(seg, reason); err != nil {
			s.log.Error("segment deleted but its deletion could not be recorded in the chain: verify will report it missing", "segment", seg.name, "err", err)
		}
	}
	for _, n := range seg.side {
		s.fsys.Remove(join(s.dir, n))
	}
	if err := s.man.addDelete(seg.sum.firstSeq, seg.sum.lastSeq, seg.sum.run); err != nil {
		s.log.Debug("index file not updated; it is reconciled at the next open", "err", err)
	}
	return nil
}

// sealLate seals a segment whose sealing failed when it was retired.
// Caller holds wmu.
func (s *Store) sealLate(seg *segment) error {
	f, err := s.fsys.OpenFile(join(s.dir, seg.name), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	s.mu.Lock()
	sum := seg.sum
	sum.clocks = append([]clockEntry(nil), sum.clocks...)
	idx := append([]indexEntry(nil), seg.idx...)
	s.mu.Unlock()
	if _, err := seal(f, &sum, idx); err != nil {
		f.Truncate(sum.dataEnd)
		return err
	}
	if err := s.linkSegment(seg.name, &sum, nil, false); err != nil {
		s.log.Warn("segment sealed but not linked into the chain; it is linked when the store is next opened", "segment", seg.name, "err", err)
	}
	s.mu.Lock()
	seg.sum, seg.sealed, seg.idx = sum, true, nil
	s.synced = max(s.synced, sum.lastSeq)
	s.mu.Unlock()
	return s.man.addSummary(&sum)
}

// updateDamageFault keeps FaultDamaged raised while a segment with damaged
// records remains.
func (s *Store) updateDamageFault() {
	s.mu.Lock()
	var segs, recs int
	for _, seg := range s.segs {
		if seg.sum.corrupt > 0 {
			segs++
			recs += int(seg.sum.corrupt)
		}
	}
	recs += int(s.st.corruptRead)
	s.mu.Unlock()
	now := s.clk.Now()
	if segs > 0 || recs > 0 {
		s.faults.raise(FaultDamaged, fmt.Sprintf("%d damaged records found in the footage and skipped (the frames they held are lost); run 'outpost footage verify' for details and check the SD card", recs), now)
		return
	}
	s.faults.clear(FaultDamaged, now)
}

// rateMeter estimates the write rate from samples of the bytes written,
// over the last hour.
type rateMeter struct {
	t     []time.Time
	bytes []int64
}

const rateWindow = time.Hour

func (r *rateMeter) sample(now time.Time, total int64) {
	r.t = append(r.t, now)
	r.bytes = append(r.bytes, total)
	for len(r.t) > 2 && now.Sub(r.t[1]) >= rateWindow {
		r.t, r.bytes = r.t[1:], r.bytes[1:]
	}
}

// rateAt is bytes per second from the oldest sample in the window to now,
// when total had been written; 0 if unknown (under a second of data).
func (r *rateMeter) rateAt(now time.Time, total int64) float64 {
	if len(r.t) == 0 {
		return 0
	}
	d := now.Sub(r.t[0]).Seconds()
	if d < 1 {
		return 0
	}
	return float64(total-r.bytes[0]) / d
}
