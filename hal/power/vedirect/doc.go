// Package vedirect reads a Victron solar charge controller (SmartSolar and
// BlueSolar MPPT) or battery monitor (BMV, SmartShunt) over its VE.Direct
// port, using the text protocol the device sends by itself once a second.
//
// # Wire format
//
// The port is 19200 baud, 8 data bits, no parity, 1 stop bit. The device
// sends blocks of fields. Each field is
//
//	"\r\n" label "\t" value
//
// and a block ends with the field whose label is "Checksum" and whose value
// is a single byte, chosen by the device so that the sum of every byte of
// the block, from the first "\r\n" to the checksum byte included, is 0
// modulo 256. The checksum byte may be any byte, including '\r', '\n', '\t'
// and ':'. A battery monitor splits its fields over two blocks, each with
// its own checksum.
//
// Between text fields the device may send frames of the HEX protocol: a ':'
// followed by hexadecimal digits up to and including '\n'. Their bytes are
// not part of any block's checksum, and this package skips them.
//
// # Invariants
//
// A [Decoder] returns only blocks whose checksum is right; a block with a
// wrong checksum, an over-long label or value, or too many fields is
// discarded whole and reported as a [*BlockError], and decoding resumes at
// the next "\n". Nothing in a discarded block reaches a reading.
//
// [Decode] maps a block's fields to typed [Values] in SI units (volts, not
// millivolts). A field the block does not carry, or carries as "---", stays
// nil: a reading never shows a made-up zero.
package vedirect
