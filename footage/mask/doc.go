// Package mask blanks privacy masks (views of private property: windows,
// gardens) out of MJPEG frames in the compressed domain, before a frame
// is stored or sent, as the Surveillance Camera Code of Practice asks.
//
// # Method
//
// A frame is a baseline sequential Huffman JPEG as cameras send it:
// 8-bit, grayscale or YCbCr, any sampling (4:4:4, 4:2:2, 4:2:0, ...),
// interleaved or one scan per component, with or without restart markers
// (DRI/RSTn), with or without DHT (MJPEG from UVC cameras leaves the
// Huffman tables out and relies on the standard tables of ITU-T T.81
// Annex K.3). No pixel is decoded: no inverse DCT, no colour conversion.
// For each scan, a Masker
//
//  1. removes the byte stuffing of the entropy-coded data, noting where
//     each restart interval ends;
//  2. Huffman-decodes every block's coefficients into run/size symbols
//     with their extra bits. A block of a masked MCU gets DC coefficient
//     0 and no AC coefficient: after the level shift every sample of the
//     block decodes to exactly 128, mid-grey in Y and neutral in Cb and
//     Cr, whatever the quantisation tables. Every other block keeps its
//     symbols exactly. DC differences are recomputed against the new
//     predecessors, and predictors reset at every restart interval;
//  3. re-encodes the symbols with byte stuffing, a restart marker (RSTn,
//     numbered from 0) wherever the frame had one, and ones padding
//     before each marker.
//
// The output keeps the frame's headers (quantisation tables, SOF, DRI,
// COM and APPn segments) in order, with two exceptions: its DHT segments
// are replaced by one DHT before each scan defining the tables that scan
// is coded with, and APPn segments that hold a picture of the scene (a
// JFIF thumbnail, a JFXX extension, an embedded JPEG such as an Exif
// thumbnail) are dropped, as they would show what the mask hides. Data
// after the end-of-image marker is dropped.
//
// # Snapping
//
// A Mask is rectangles and polygons in the pixels of a frame of a
// reference size; a frame of another size gets the mask scaled to it. The
// mask is snapped outward to the frame's MCU grid (8×8, 16×8 or 16×16
// pixels for 4:4:4, 4:2:2 and 4:2:0, 8×8 for grayscale): an MCU is blanked
// when a rectangle covers any of its pixels, or when a polygon's interior
// overlaps it (a polygon edge lying on an MCU border does not blank the MCU
// beyond). Blanking whole MCUs treats every component's blocks alike, so
// no chroma of a masked area survives. Mask.Snapped gives the blanked area
// as rectangles of pixels for a frame geometry (Masker.Stats reports the
// geometry of the last frame), to be recorded with the footage.
//
// # Huffman tables
//
// The new symbols (EOB in masked blocks, DC differences of categories the
// frame may never have used) may have no code in the frame's own tables.
// Three choices were measured; figures are masked size / original size:
//
//	frame                                 optimal      own          standard
//	1080p noisy 4:2:0, standard tables,
//	  a fifth of it masked                0.690        0.739        0.739
//	one MCU masked, 320x180 frames with:
//	  standard tables (cjpeg)             0.869-0.878  0.993-0.997  0.993-0.997
//	  optimised tables (ffmpeg)           0.997-1.000  0.998-1.000  1.127-1.162
//	  no DHT (UVC MJPEG)                  0.901-0.910  1.033-1.040  1.033-1.040
//
// (re-encoding the 1080p frame with image/jpeg at the same quality gives
// 0.738). HuffmanOwn reuses each table of the frame that has a code for
// every symbol needed, and the standard table otherwise; it never grows a
// frame with tables of its own beyond a few bytes, but a frame without
// DHT gains one (about 420 bytes). HuffmanStandard grows frames whose
// encoder optimised its tables by 13-16%. HuffmanOptimal builds tables
// from the masked frame's own symbol counts (T.81 Annex K.2, codes limited
// to 16 bits) and writes them in the DHT: it always has every code, and it
// is the smallest or within 0.3% of it on every frame measured, typically
// 10-13% below the original for cameras that code with the standard
// tables. The counts come from the decoding pass the method makes anyway,
// so the extra cost is building the tables (well under 1% of the time).
// HuffmanOptimal is therefore the default; on a metered 4G link the
// smaller frame is worth having.
//
// # Guarantees
//
// Every block of an unmasked MCU decodes bit-identically to the original
// (same coefficients, same quantisation tables). Every block of a masked
// MCU decodes to uniform 128. A frame that cannot be parsed, is truncated,
// damaged or of a kind not supported (progressive, arithmetic-coded,
// lossless, 12-bit, DNL) makes Apply return an error and no bytes: it is
// never passed through unmasked. The caller then drops the frame, or
// stores Blank of the frame's size in its place. A frame the mask does not
// touch (no MCU blanked) is returned unchanged. Malformed input never
// panics, and the work done is bounded by the size of the input.
//
// A Masker keeps its buffers from frame to frame: in the steady state
// Apply allocates nothing. On a noisy 1080p frame it takes about a
// seventh of the time of decoding, filling and re-encoding with
// image/jpeg (see BenchmarkMask1080p and BenchmarkDecodeFillEncode1080p).
package mask
