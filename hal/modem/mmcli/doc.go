// Package mmcli reads a cellular modem through ModemManager's command-line
// client, mmcli, for units where ModemManager owns the modem (it holds the
// AT and QMI/MBIM ports, so the at package cannot use them).
//
// # Commands
//
// A reading runs, each through exec.CommandContext with its own timeout:
//
//	mmcli -m <modem> -J                 state, operator, registration, access technologies, bearers
//	mmcli -m <modem> --signal-setup=<s> once per modem, so that ModemManager polls the signal every <s> seconds
//	mmcli -m <modem> --signal-get -J    RSRP, RSRQ, RSSI, SNR per technology (lte, 5g, umts, gsm)
//	mmcli -b <bearer> -J                a bearer's byte counters and connection time (Traffic only)
//
// <modem> is the modem's index, its D-Bus path, or "any", the first modem.
// ModemManager gives a modem a new index and D-Bus path each time it
// appears, so after the modem resets an index no longer matches: "any" (the
// default) follows it. The signal set-up belongs to one modem object, so it
// is run again when the modem's D-Bus path changes, and when --signal-get
// reports a refresh rate of 0 (ModemManager restarted).
//
// # JSON
//
// mmcli -J prints every value as a string, "--" when unavailable, and lists
// (access-technologies, bearers) as arrays; the parsers here take "--", "",
// and values out of their physical range as unknown (nil), and accept a
// single string where a list is expected, as some versions print.
//
//	modem.3gpp.operator-name          "vodafone UK"; empty: operator-code, "23415"
//	modem.3gpp.registration-state     "home", "roaming", "searching", "denied", "idle", "unknown", ...
//	modem.generic.access-technologies ["lte"], ["lte", "5gnr"] (5G NSA), ["5gnr"] (5G SA), ["umts"], ...
//	modem.generic.signal-quality.value "67" (percent)
//	modem.generic.bearers             ["/org/freedesktop/ModemManager1/Bearer/0"]
//	modem.signal.lte.rsrp             "-98.00" (dBm); also rsrq, rssi, snr
//	modem.signal.5g.rsrp              "-85.00" (dBm); also rsrq, snr
//	modem.signal.refresh.rate         "10" (seconds; "0" when not set up)
//	bearer.stats.bytes-rx, bytes-tx   "123456" (this connection)
//	bearer.stats.total-bytes-rx, -tx  "1234567" (every connection of the bearer)
//	bearer.stats.duration             "3600" (seconds)
//	bearer.status.connected           "yes" / "no"
//	bearer.status.interface           "wwan0"
package mmcli
