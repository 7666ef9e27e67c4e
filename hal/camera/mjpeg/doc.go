// Package mjpeg reads Motion JPEG: streams of JPEG images as IP cameras
// serve them over HTTP and as ffmpeg writes them to files, and single
// frames as V4L2 cameras deliver them. It finds where each image ends
// without decoding it, so capture costs one pass over the bytes.
//
// # Framing
//
// Two framings are read (Mode):
//
//   - Raw: JPEG images back to back, SOI (FF D8) to EOI (FF D9), as
//     `ffmpeg -f mjpeg` writes. Anything between images is skipped up to
//     the next SOI and counted (Reader.Skipped).
//
//   - Multipart: multipart/x-mixed-replace, as most IP cameras and
//     `ffmpeg -f mpjpeg` serve. Each image is a part:
//
//     --BOUNDARY CRLF
//     Content-Type: image/jpeg CRLF
//     Content-Length: N CRLF        (optional)
//     CRLF
//     N bytes of JPEG CRLF
//
//     The boundary comes from the Content-Type's boundary parameter, or is
//     learnt from the first line that starts with "--" (ffmpeg serves
//     application/octet-stream). Cameras differ: a declared boundary that
//     already starts with "--" is accepted with or without a second "--";
//     blank lines between parts are ignored; with a Content-Length the
//     body is read by length and must hold a whole JPEG (padding after
//     its EOI is cut off); without one, the image is scanned to its EOI.
//     "--BOUNDARY--" ends the stream.
//
// # Finding the end of an image
//
// An image is a sequence of marker segments (FF, a code, a 2-byte
// big-endian length that counts itself, the payload) up to SOS, whose
// segment is followed by entropy-coded data. Inside entropy-coded data an
// FF byte is always followed by 00 (a stuffed FF), a restart code D0-D7,
// or a marker that ends the data: EOI ends the image; another segment
// (DHT, SOS, ... in progressive or multi-scan images) is followed by
// length as before. So the end is found by skipping segments by length
// and searching the data for FF only, never by looking for FF D9 in
// headers, where an embedded EXIF thumbnail holds its own SOI and EOI.
//
// An SOI where the image should continue means the image was cut short
// and the next one has started: the short one is dropped as truncated and
// the new one read from its SOI. Any other impossible byte drops the image
// as malformed and the Reader resynchronises on the next SOI.
//
// # Memory
//
// Frames are copied at most once, from the Reader's read buffer into a
// buffer from Options.Alloc; bytes of a multipart part with a
// Content-Length are mostly read straight into that buffer. In steady
// state, with an Alloc that recycles buffers, the Reader allocates
// nothing per frame.
//
// # Huffman tables
//
// Many UVC cameras send frames without Huffman tables (DHT), relying on
// the decoder to use the standard ones. Frames are stored as received;
// WithHuffmanTables returns a copy any decoder can read.
package mjpeg
