// Package at reads a cellular modem's registration and signal through AT
// commands (3GPP TS 27.007, plus Quectel's +QENG) on its serial command
// port, e.g. /dev/ttyUSB2 of a Quectel EC25 or EG25-G.
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
// # Modem
//
// A [Modem] opens the port for each reading and closes it afterwards, so it
// never holds the port across unrelated users, and a modem that resets and
// re-enumerates costs one failed reading.
package at
