package ota

import (
	"bytes"
	"encoding/binary"
)

// deltaStreams are the three streams of a bsdiff delta before compression.
type deltaStreams struct {
	// ctrl holds one record per step: uvarint add, uvarint copy, varint
	// seek. Add bytes of diff are added to the base from the current base
	// position, copy bytes of extra follow, then the base position moves
	// by seek.
	ctrl []byte
	// diff holds new minus base, byte by byte, over the approximate
	// matches: mostly zeros.
	diff []byte
	// extra holds the bytes of the new binary that match nothing.
	extra []byte
	// segs are the records' add segments: where the diff stream meets
	// the base.
	segs []addSeg
}

// addSeg is a stretch of the diff stream added to the base.
type addSeg struct{ diff, base, n int }

// diffBsdiff computes the delta from old to new with Colin Percival's
// bsdiff algorithm ("Naive differences of executable code", 2003): exact
// matches found with the suffix array of old are extended forwards and
// backwards into approximate matches, whose byte differences (mostly
// zeros: the code is the same, only some addresses moved) go to the diff
// stream and whatever lies between them to the extra stream.
func diffBsdiff(old, new []byte) deltaStreams {
	var d deltaStreams
	d.diff = make([]byte, 0, len(new))
	var sa []int32
	if len(old) > 0 {
		sa = suffixArray(old)
	}
	oldSize, newSize := len(old), len(new)
	var scan, pos, length, lastScan, lastPos, lastOffset int
	// The last record is held back, so that the seek of a record that
	// moves no byte can be added to it: the decoder refuses such records
	// but the first.
	var held bool
	var heldAdd, heldCopy, heldSeek int
	flush := func() {
		if held {
			d.ctrl = binary.AppendUvarint(d.ctrl, uint64(heldAdd))
			d.ctrl = binary.AppendUvarint(d.ctrl, uint64(heldCopy))
			d.ctrl = binary.AppendVarint(d.ctrl, int64(heldSeek))
		}
	}
	for scan < newSize {
		oldScore := 0
		scan += length
		scsc := scan
		for ; scan < newSize; scan++ {
			pos, length = longestMatch(old, sa, new[scan:])
			for ; scsc < scan+length; scsc++ {
				if o := scsc + lastOffset; o >= 0 && o < oldSize && old[o] == new[scsc] {
					oldScore++
				}
			}
			if (length == oldScore && length != 0) || length > oldScore+8 {
				break
			}
			if o := scan + lastOffset; o >= 0 && o < oldSize && old[o] == new[scan] {
				oldScore--
			}
		}
		if length == oldScore && scan != newSize {
			continue
		}
		// Extend the previous match forwards as long as at least half
		// the bytes agree...
		s, sf, lenf := 0, 0, 0
		for i := 0; lastScan+i < scan && lastPos+i < oldSize; {
			if old[lastPos+i] == new[lastScan+i] {
				s++
			}
			i++
			if s*2-i > sf*2-lenf {
				sf, lenf = s, i
			}
		}
		// ...and the new one backwards.
		lenb := 0
		if scan < newSize {
			s, sb := 0, 0
			for i := 1; scan >= lastScan+i && pos >= i; i++ {
				if old[pos-i] == new[scan-i] {
					s++
				}
				if s*2-i > sb*2-lenb {
					sb, lenb = s, i
				}
			}
		}
		// Where the two overlap, split at the best point.
		if lastScan+lenf > scan-lenb {
			overlap := lastScan + lenf - (scan - lenb)
			s, ss, lens := 0, 0, 0
			for i := 0; i < overlap; i++ {
				if new[lastScan+lenf-overlap+i] == old[lastPos+lenf-overlap+i] {
					s++
				}
				if new[scan-lenb+i] == old[pos-lenb+i] {
					s--
				}
				if s > ss {
					ss, lens = s, i+1
				}
			}
			lenf += lens - overlap
			lenb -= lens
		}
		if lenf > 0 {
			d.segs = append(d.segs, addSeg{diff: len(d.diff), base: lastPos, n: lenf})
		}
		for i := 0; i < lenf; i++ {
			d.diff = append(d.diff, new[lastScan+i]-old[lastPos+i])
		}
		extra := scan - lenb - (lastScan + lenf)
		d.extra = append(d.extra, new[lastScan+lenf:scan-lenb]...)
		seek := (pos - lenb) - (lastPos + lenf)
		switch {
		case lenf == 0 && extra == 0 && held:
			// A record that moves no byte only moves the base
			// position: the previous record's seek does it instead.
			heldSeek += seek
		default:
			flush()
			held, heldAdd, heldCopy, heldSeek = true, lenf, extra, seek
		}
		lastScan, lastPos, lastOffset = scan-lenb, pos-lenb, pos-scan
	}
	flush()
	return d
}

// longestMatch returns the position in old of a longest prefix of b, and
// its length, by binary search of old's suffix array.
func longestMatch(old []byte, sa []int32, b []byte) (pos, n int) {
	if len(sa) == 0 || len(b) == 0 {
		return 0, 0
	}
	lo, hi := 0, len(sa)-1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if bytes.Compare(old[sa[mid]:], b) < 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	x, y := matchLen(old[sa[lo]:], b), matchLen(old[sa[hi]:], b)
	if x >= y {
		return int(sa[lo]), x
	}
	return int(sa[hi]), y
}

// matchLen is the length of the common prefix of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
