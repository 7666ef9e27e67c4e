// Package scene checks that the picture is worth recording: the faults a
// unit on a pole must report by itself, because nobody watches its live
// view. It looks at about one frame a second, at the 1/8-scale luma image
// (the mean of every 8×8 block, from footage/motion/jpegdc) and, when it is
// given the JPEG, at the energy of the luma's AC coefficients.
//
// An Analyzer reports four conditions. Each is raised once its fault has
// been seen in every analysed frame for a hold time, and cleared once the
// picture has been good, by a stricter threshold, for ClearHold (30 s), so
// that a picture at the edge of a threshold does not flap.
//
//   - frozen: the picture does not change at all. Two analysed frames a
//     second apart whose mean absolute difference over all cells is at most
//     FrozenMaxDiff (0.02 grey levels: identical but for a few cells
//     changed by one level) are frozen; FrozenHold (30 s) of them raise the
//     condition; a difference above twice that clears it. A real sensor is
//     never that still, even on a static scene at night: its noise moves a
//     large share of the block means by a level or more from one second to
//     the next, while a camera repeating its last buffer sends the same
//     bytes. A blank picture is not judged (it is reported as blank).
//   - blank: the lens is covered, painted or blinded, or the IR
//     illuminator failed at night. The picture is black when 95% of its
//     cells are at most BlackLevel (28 of 255), and uniform when the spread
//     between its 5th and 95th percentiles is at most UniformSpread (6
//     levels), whatever its brightness; percentiles, not the mean and
//     variance, so a street lamp in a black picture does not hide it.
//     BlankHold (20 s) raises; a 95th percentile above 1.5×BlackLevel and a
//     spread above 1.5×UniformSpread clear.
//   - scene_changed: the view no longer matches the reference taken at
//     commissioning (the camera was knocked or turned). The score is the
//     normalised cross-correlation, means removed, of the gradient
//     magnitudes of the frame and of the reference, taken apart for the
//     horizontal and the vertical gradients and the lower of the two kept
//     (a street's long horizontal edges still match when the camera has
//     turned sideways), at the best of the shifts by up to MaxShift cells
//     (a pole swaying in the wind): 1 is the same view. Gradients make it
//     blind to brightness and contrast (day, night, clouds); the median
//     over the last Window (15) scores makes it blind to people and
//     vehicles passing. A median below SceneRaise (0.5) for SceneHold
//     (5 min) raises; above SceneClear (0.7) clears.
//   - out_of_focus: the picture is softer than at commissioning (defocus,
//     a dirty, fogged or wet window). Sharpness is the mean AC energy of a
//     luma block divided by the mean absolute difference between
//     neighbouring block means: fine detail against coarse contrast, so
//     brightness cancels out. The score is its ratio to the reference's; a
//     median below FocusRaise (0.6) for FocusHold (5 min) raises, above
//     FocusClear (0.8) clears. Without the JPEG (Observe rather than
//     ObserveJPEG, or a reference commissioned from an image) the
//     sharpness falls back on the 1/8-scale image alone: the energy of the
//     differences between neighbouring cells against that of cells two
//     apart. That sees only a blur over several cells (a lens badly out of
//     focus, heavy condensation), not a slight softening: on a test scene
//     a 25-pixel box blur scores 0.34, a 7-pixel one 0.90, where the AC
//     energy gives 0.09.
//
// Feed an Analyzer through one of Observe (1/8-scale images) or
// ObserveJPEG (frames, with the AC energy), not both: the sharpness they
// measure is not the same. Sink wraps it as a frame sink of the capture
// component with its own goroutine; the caller persists the Reference it
// commissions and gives it back at start.
//
// scene_changed and out_of_focus are judged only in frames with enough
// detail to compare (a mean gradient of MinDetail grey levels per cell and
// well above the sensor noise, estimated from the change between frames),
// never in a blank picture; out_of_focus only in frames that match the
// reference view (correlation above SceneClear) while scene_changed is not
// raised, and whose cells spread at least FocusMinContrast (0.7) of the
// reference's standard deviation: JPEG quantisation strips proportionally
// more fine detail from a dull picture (dusk, fog), which would otherwise
// look soft. A night picture whose IR image does not resemble the daytime
// reference is thus not judged, rather than judged wrongly; the frames in
// which a condition cannot be judged restart its hold time, and do not
// clear it.
//
// # Reference file
//
// The reference is persisted by the caller as the bytes of
// Reference.Marshal, a small binary file, little-endian:
//
//	offset size
//	0      8    magic "OPSCNREF"
//	8      2    version, 1
//	10     2    flags: bit 0 set when the AC sharpness is known; others 0
//	12     2    width of the 1/8-scale image in cells, 1-2048
//	14     2    height in cells, 1-2048
//	16     8    time taken, Unix nanoseconds (signed), 0 when unknown
//	24     8    AC sharpness, IEEE 754 binary64 (0 when unknown)
//	32     w×h  the image, rows top to bottom, one byte a cell
//	32+w×h 4    CRC-32 (Castagnoli) of every byte before it
//
// UnmarshalReference refuses another magic, a newer version, a size that
// does not match the length, and a bad CRC; a reference that cannot be
// read must be taken again (commission the unit).
package scene
