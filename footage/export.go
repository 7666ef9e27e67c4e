package footage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"os"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/outpost-cctv/outpost/hal/camera"
)

// Export writes the frames in [from, to) to w as a fragmented MP4 (MJPEG in
// MP4, as ffmpeg writes it: an mp4v sample entry whose decoder config
// names JPEG, object type 0x6C). It streams: one fragment of about a
// second is in memory at a time. Sample times come from the frames'
// (corrected) capture times, so gaps between events last as long as they
// did; every fragment carries a producer reference time (prft) with the
// wall-clock capture time of its first frame. Damaged frames are left out
// (the frame before is shown for longer) and counted in ExportInfo.Skipped.
//
// It returns ErrNoFootage, having written nothing, when the range holds no
// frame. The segments read are kept from eviction until it returns; it
// stops with ctx's error when ctx is cancelled.
func (s *Store) Export(ctx context.Context, w io.Writer, from, to time.Time) (ExportInfo, error) {
	f, t := from.UnixNano(), to.UnixNano()
	vs, err := s.pinViews(overlap(f, t))
	if err != nil {
		return ExportInfo{}, err
	}
	defer s.release(vs)

	// Plan from the indexes alone: which frames, the timeline, the size.
	var p exportPlan
	inRange := func(eff int64, _ *indexEntry) bool { return eff >= f && eff < t }
	if _, err := s.query(ctx, vs, inRange, false, p.add); err != nil {
		return ExportInfo{}, err
	}
	if p.frames == 0 {
		return ExportInfo{}, fmt.Errorf("%w: nothing between %s and %s", ErrNoFootage, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if p.codec != camera.MJPEG {
		return ExportInfo{}, fmt.Errorf("footage: export of %s footage to MP4 is not supported yet", p.codec)
	}
	if p.width == 0 || p.height == 0 {
		fr, err := s.FrameBySeq(ctx, p.firstSeq)
		if err == nil {
			if c, err := jpeg.DecodeConfig(bytes.NewReader(fr.Data)); err == nil {
				p.width, p.height = c.Width, c.Height
			}
		}
	}
	end := p.end()

	cw := &countWriter{w: w}
	if err := writeInit(cw, p, end); err != nil {
		return ExportInfo{}, fmt.Errorf("footage: export: %w", err)
	}
	fw := fragmenter{w: cw, tl: timeline{base: p.base}, endDTS: end}
	skipped, err := s.exportFrames(ctx, vs, f, t, p.lastSeq, &fw)
	if err == nil {
		err = fw.finish()
	}
	info := ExportInfo{
		Frames: fw.frames, Skipped: skipped, First: fromNano(p.base),
		Duration: time.Duration(end) * time.Second / timescale, Bytes: cw.n,
		Width: p.width, Height: p.height,
	}
	info.End = info.First.Add(info.Duration)
	if err != nil {
		return info, fmt.Errorf("footage: export: %w", err)
	}
	return info, nil
}

// exportFrames reads the chosen frames straight into the fragmenter's
// sample buffers, checking each record, and hands them over in order.
func (s *Store) exportFrames(ctx context.Context, vs []segView, from, to int64, lastSeq uint64, fw *fragmenter) (int, error) {
	skipped := 0
	for i := range vs {
		v := &vs[i]
		idx, err := s.entries(v)
		if err != nil {
			return skipped, err
		}
		var f File
		for _, e := range idx {
			eff := e.time + v.off
			if e.kind != kindFrame || eff < from || eff >= to || e.seq > lastSeq {
				continue
			}
			if err := ctx.Err(); err != nil {
				closeFile(f)
				return skipped, err
			}
			if f == nil {
				if f, err = s.fsys.OpenFile(join(s.dir, v.seg.name), os.O_RDONLY, 0); err != nil {
					return skipped, fmt.Errorf("footage: open segment %s: %w", v.seg.name, err)
				}
			}
			_, data, _, err := s.readPayload(f, v, e, fw.sampleBuf(recHeaderSize+int(e.length)))
			if errors.Is(err, errCorrupt) {
				skipped++
				s.damagedRead(v.seg.name, e)
				continue
			}
			if err != nil {
				f.Close()
				return skipped, fmt.Errorf("footage: read segment %s: %w", v.seg.name, err)
			}
			if err := fw.add(eff, data); err != nil {
				f.Close()
				return skipped, err
			}
		}
		closeFile(f)
	}
	return skipped, nil
}

func closeFile(f File) {
	if f != nil {
		f.Close()
	}
}

// ExportInfo describes an exported clip.
type ExportInfo struct {
	Frames  int // frames written
	Skipped int // damaged frames left out
	// First is the capture time of the first frame; End that of the last
	// frame plus its duration.
	First, End    time.Time
	Duration      time.Duration
	Bytes         int64
	Width, Height int
}

// timescale is the MP4 media timescale: 90 kHz, the usual for video,
// exact for 25 and 30 fps.
const timescale = 90000

// timeline turns capture times into decode times that always increase.
type timeline struct {
	base int64 // capture time of the first frame, ns
	prev int64 // previous decode time, -1 before the first
	n    int
}

func (tl *timeline) next(eff int64) int64 {
	d := eff - tl.base
	if d < 0 {
		d = 0
	}
	// Rounded ns → 90 kHz, without overflow for spans of years.
	dts := d/1e9*timescale + (d%1e9*timescale+5e8)/1e9
	if tl.n > 0 && dts <= tl.prev {
		dts = tl.prev + 1
	}
	tl.prev = dts
	tl.n++
	return dts
}

// exportPlan gathers what the MP4 header needs from the indexes.
type exportPlan struct {
	frames            int
	bytes             int64
	firstSeq, lastSeq uint64
	base              int64
	codec             camera.Codec
	width, height     int
	tl                timeline
	lastDTS, prevDTS  int64
}

func (p *exportPlan) add(fr Frame) error {
	eff := fr.Time.UnixNano()
	if p.frames == 0 {
		p.base, p.firstSeq = eff, fr.Seq
		p.tl.base = eff
		p.codec, p.width, p.height = fr.Codec, fr.Width, fr.Height
	}
	p.frames++
	p.lastSeq = fr.Seq
	p.prevDTS = p.lastDTS
	p.lastDTS = p.tl.next(eff)
	return nil
}

// end is the decode time at which the clip ends: the last frame lasts as
// long as the one before it (within reason), or 1/25 s if it is alone.
func (p *exportPlan) end() int64 {
	d := int64(timescale / 25)
	if p.frames > 1 {
		d = min(max(p.lastDTS-p.prevDTS, 1), timescale)
	}
	return p.lastDTS + d
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ms converts decode time to the movie timescale (ms).
func ms(dts int64) uint64 { return uint64((dts + timescale/2000) / (timescale / 1000)) }

// writeInit writes ftyp and moov for one MJPEG video track.
func writeInit(w io.Writer, p exportPlan, end int64) error {
	init := mp4.NewMP4Init()
	init.AddChild(mp4.NewFtyp("isom", 0x200, []string{"isom", "iso6", "mp41"}))
	moov := mp4.NewMoovBox()
	init.AddChild(moov)
	mvhd := mp4.CreateMvhd()
	mvhd.Timescale = 1000
	mvhd.Duration = ms(end)
	created := uint64(max(p.base/1e9+mp4Epoch, 0))
	mvhd.CreationTime, mvhd.ModificationTime = created, created
	if mvhd.Duration > math.MaxUint32 || created > math.MaxUint32 {
		mvhd.Version = 1
	}
	moov.AddChild(mvhd)

	trak := mp4.CreateEmptyTrak(1, timescale, "video", "und")
	moov.AddChild(trak)
	trak.Tkhd.Duration = ms(end)
	trak.Tkhd.CreationTime, trak.Tkhd.ModificationTime = created, created
	if trak.Tkhd.Duration > math.MaxUint32 || created > math.MaxUint32 {
		trak.Tkhd.Version = 1
	}
	trak.Tkhd.Width = mp4.Fixed32(uint32(p.width) << 16)
	trak.Tkhd.Height = mp4.Fixed32(uint32(p.height) << 16)
	trak.Mdia.Mdhd.CreationTime, trak.Mdia.Mdhd.ModificationTime = created, created
	trak.Mdia.Hdlr.Name = "Outpost footage"
	if created > math.MaxUint32 {
		trak.Mdia.Mdhd.Version = 1
	}
	esds := &mp4.EsdsBox{ESDescriptor: mp4.ESDescriptor{
		EsID: 1,
		DecConfigDescriptor: &mp4.DecoderConfigDescriptor{
			ObjectType: 0x6C, // Visual ISO/IEC 10918-1 (JPEG)
			StreamType: 0x11, // visual stream (0x04 << 2) | reserved 1
		},
		SLConfigDescriptor: &mp4.SLConfigDescriptor{ConfigValue: 0x02},
	}}
	vse := mp4.CreateVisualSampleEntryBox("mp4v", uint16(p.width), uint16(p.height), esds)
	vse.CompressorName = "outpost footage"
	vse.AddChild(&mp4.PaspBox{HSpacing: 1, VSpacing: 1})
	trak.Mdia.Minf.Stbl.Stsd.AddChild(vse)

	mvex := mp4.NewMvexBox()
	mvex.AddChild(&mp4.MehdBox{Version: 1, FragmentDuration: int64(ms(end))})
	trex := mp4.CreateTrex(1)
	trex.DefaultSampleFlags = mp4.SyncSampleFlags
	mvex.AddChild(trex)
	moov.AddChild(mvex)
	return init.Encode(w)
}

// mp4Epoch is the seconds from 1904 (MP4's epoch) to 1970.
const mp4Epoch = 2082844800

// fragmenter groups frames into fragments of about a second and writes
// each as prft, moof and mdat.
type fragmenter struct {
	w      io.Writer
	tl     timeline
	endDTS int64
	seq    uint32
	frames int

	// pool holds the sample buffers; the first len(parts) are in use by
	// the fragment being built.
	pool  [][]byte
	parts [][]byte
	bytes int
	dts   []int64
	first int64 // capture time of the fragment's first frame
}

// sampleBuf returns a buffer of at least n bytes not used by the pending
// fragment.
func (fw *fragmenter) sampleBuf(n int) []byte {
	i := len(fw.parts)
	if i == len(fw.pool) {
		fw.pool = append(fw.pool, nil)
	}
	if cap(fw.pool[i]) < n {
		fw.pool[i] = make([]byte, n)
	}
	return fw.pool[i][:n]
}

const (
	fragmentTicks = timescale // about one second per fragment
	fragmentBytes = 16 << 20  // or less when frames are large
	gapTicks      = timescale // a gap longer than this starts a fragment
)

// add appends a frame captured at eff whose data is in the last buffer
// sampleBuf returned.
func (fw *fragmenter) add(eff int64, data []byte) error {
	dts := fw.tl.next(eff)
	if n := len(fw.dts); n > 0 {
		if dts-fw.dts[0] >= fragmentTicks || fw.bytes+len(data) > fragmentBytes || dts-fw.dts[n-1] > gapTicks {
			// The new frame's buffer is not part of the fragment being
			// flushed: move it to the front of the pool.
			i := len(fw.parts)
			if err := fw.flush(dts); err != nil {
				return err
			}
			fw.pool[0], fw.pool[i] = fw.pool[i], fw.pool[0]
		}
	}
	if len(fw.dts) == 0 {
		fw.first = eff
	}
	fw.parts = append(fw.parts, data)
	fw.bytes += len(data)
	fw.dts = append(fw.dts, dts)
	fw.frames++
	return nil
}

func (fw *fragmenter) finish() error {
	if len(fw.dts) == 0 {
		return nil
	}
	return fw.flush(max(fw.endDTS, fw.dts[len(fw.dts)-1]+1))
}

// flush writes the pending frames as one fragment; next is the decode time
// of what follows, which ends the last frame.
func (fw *fragmenter) flush(next int64) error {
	fw.seq++
	frag, err := mp4.CreateFragment(fw.seq, 1)
	if err != nil {
		return err
	}
	for i, dts := range fw.dts {
		end := next
		if i+1 < len(fw.dts) {
			end = fw.dts[i+1]
		}
		dur := min(max(end-dts, 1), math.MaxUint32)
		frag.AddSample(mp4.Sample{Flags: mp4.SyncSampleFlags, Dur: uint32(dur), Size: uint32(len(fw.parts[i]))}, uint64(dts))
		frag.Mdat.AddSampleDataPart(fw.parts[i])
	}
	ntp := mp4.NewNTP64(float64(fw.first) / 1e9)
	prft := mp4.CreatePrftBox(1, mp4.PrftTimeCaptured, 1, ntp, uint64(fw.dts[0]))
	if err := prft.Encode(fw.w); err != nil {
		return err
	}
	if err := frag.Encode(fw.w); err != nil {
		return err
	}
	fw.parts, fw.dts, fw.bytes = fw.parts[:0], fw.dts[:0], 0
	return nil
}
