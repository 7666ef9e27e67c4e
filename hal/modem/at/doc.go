// Package at reads a cellular modem's registration, signal and clock
// through AT commands (3GPP TS 27.007, plus Quectel's +QENG and SIMCom's
// +CPSI) on its serial command port, e.g. /dev/ttyUSB2 of a Quectel EC25 or
// EG25-G, or of a SIMCom SIM7600.
//
// # Session
//
// A [Session] sends one command at a time, "AT..." ended by "\r", and reads
// lines (ended by "\r" or "\n", blank lines skipped) until a final result:
// "OK", "ERROR", "+CME ERROR: <n>" or "+CMS ERROR: <n>". While it waits:
//
//   - a line equal to the command is the modem's echo and is dropped;
//   - a line starting with the command's own prefix ("+CSQ:" for AT+CSQ) is
//     the command's information response;
//   - any other line is an unsolicited result code (URC), such as "RING",
//     "+QIND: ..." or "+CEREG: 5", and is passed to the session's URC
//     handler, never mistaken for the response.
//
// A command that gets no final result within its timeout fails with
// [ErrNoAnswer]; the session must then be closed, because a late answer
// would otherwise be read as the next command's.
//
// Lines are cleaned of line noise first: control characters and bytes that
// are not UTF-8 are dropped, so a "+CSQ:" line behind a burst of garbage is
// still recognised.
//
// # Modem
//
// A [Modem] reads, in order: AT+CEREG? (registration, required), AT+COPS?
// (operator and technology), AT+CSQ (RSSI), then its flavor's serving-cell
// command: AT+QENG="servingcell" (quectel), AT+CPSI? (simcom) or AT+CESQ
// (generic, and the others' fallback when the modem refuses theirs). A
// command the modem refuses leaves its values unknown (nil). The RSSI
// reported is the serving cell's when the flavor's command gives it, and
// +CSQ's otherwise (0-31 is -113..-51 dBm, 99 unknown). [Modem.Clock] reads
// AT+CCLK?, a fallback time source.
//
// The port is opened for each reading and closed afterwards, rather than
// held open between readings behind a mutex: the port is then never held
// across unrelated users (ModemManager probing, an engineer's minicom), a
// modem that resets and re-enumerates is found again under its path at the
// next reading with no stale descriptor to notice and replace, and an
// answer arriving after a command timed out is flushed with the port
// rather than read as the next command's. Opening costs a few milliseconds
// at each telemetry interval. One reading runs at a time.
//
// When a reading fails because the port cannot be opened (the modem is
// unplugged or re-enumerating), vanishes under the session ([ErrPortLost]),
// or the modem stops answering ([ErrNoAnswer]), the port is left alone for
// RetryMin, doubling up to RetryMax with jitter; readings meanwhile fail at
// once with an [*UnavailableError] wrapping the last failure, and the agent
// reports the signal as unknown. The first reading that works resets the
// wait. A modem that answers but refuses or garbles a command is not a
// failure of the port and is not waited for.
package at
