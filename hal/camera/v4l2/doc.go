// Package v4l2 captures from USB and CSI cameras through Video4Linux2,
// using github.com/blackjack/webcam (pure Go; ioctls and mmap).
//
// # Negotiation
//
// On every open the device's formats, frame sizes and frame intervals are
// enumerated. MJPEG at the configured size and rate is asked for; what
// the driver then reports is checked, and any difference (another pixel
// format, another rate) fails with camera.ErrNeedsAttention and a message
// listing every mode the camera offers. The size is checked on the frames
// themselves, from each JPEG's frame header, because webcam.SetImageFormat
// returns the size that was asked for, not the one the driver chose.
// Cameras that offer no MJPEG at all but YUYV at the configured size are
// captured in YUYV at a reduced rate (Config.YUYVFPS) and each frame is
// converted and encoded to JPEG here; docs/performance.md gives the CPU
// cost, which is why the rate is reduced.
//
// MJPEG frames are stored as the camera sends them, Huffman tables or not
// (see mjpeg.WithHuffmanTables). Frames are checked to be whole JPEGs of
// the negotiated size; truncated ones (a USB hiccup) are dropped and
// counted.
//
// # Buffers and teardown
//
// The driver fills a small fixed number of mmap'ed buffers (Config.Buffers,
// default 4; the library's default of 256 would pin hundreds of
// megabytes at 1080p). A frame is taken with GetFrame, copied out once,
// and the buffer handed straight back with ReleaseFrame; ReadFrame is not
// used, since it requeues the buffer before the caller has copied it.
//
// The library's StopStreaming (called by Close) unmaps every buffer before
// it stops the stream. A slice of a buffer used after that faults, and a
// fault outside the Go heap kills the process. Decision: buffers never
// leave this package. The only code that sees a driver buffer is the
// session's read loop, which copies (or, for YUYV, encodes) the frame into
// memory of its own between GetFrame and ReleaseFrame while holding the
// session's device lock; Close takes the same lock, so the device is never
// stopped while a buffer is being read, and no slice of a buffer survives
// the copy. Capture in a child process was considered and rejected: it
// would cost a second copy of every frame through a pipe or shared
// memory, and a process to supervise, to guard against a fault this
// discipline already rules out.
//
// When StartStreaming fails after mapping the buffers (the USB bus lacks
// bandwidth for the mode, say), the library leaves them mapped and Close
// does not unmap them: each failed attempt would leak the buffers'
// memory, and retries run for as long as the camera keeps failing. The
// device wrapper unmaps them itself (see unmapAfterFailedStart); a test
// pins the library field it relies on.
//
// # Failures
//
// Read errors (ENODEV when the camera is unplugged, EIO, ENOTTY, ...) end
// the session: the device is closed in full, and it is opened again by
// its path after a backoff and renegotiated from scratch. A stable
// /dev/v4l/by-id/... path finds the camera again even if it comes back
// under another /dev/videoN. No frame for the frame timeout is reported
// as camera.ErrNoFrames and the device is reopened; see package
// hal/camera/internal/reconnect for the policy.
//
// All calls into the library go through the small device interface, so
// that the state machine (negotiation, timeouts, unplugging, reopening,
// wrong formats) is tested against a fake device that replays frames and
// injects errors. What needs a real camera is the manual procedure in
// docs/operations.md.
package v4l2
