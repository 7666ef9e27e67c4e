// Package modem defines the readings the agent takes from a unit's cellular
// modem: registration, radio technology, serving cell and signal quality,
// the data its connections carried, and its network-set clock. Backends:
// hal/modem/sim (simulated), hal/modem/at (AT commands on a serial port),
// hal/modem/mmcli (ModemManager).
//
// Values the modem does not report are nil, published as null.
package modem

import (
	"context"
	"time"
)

// Signal is one observation of the cellular link.
type Signal struct {
	Time time.Time
	// Registered is true when the modem is attached to a network.
	Registered bool
	// Operator is the network name, empty when unknown.
	Operator string
	// Tech is the radio access technology: "lte", "5g-nsa", "umts", ...
	Tech string
	// RSRPdBm, RSRQdB and SINRdB describe the LTE signal.
	RSRPdBm *float64
	RSRQdB  *float64
	SINRdB  *float64

	// RSSIdBm is the received signal strength: the LTE RSSI when the modem
	// reports one, otherwise the generic 27.007 +CSQ reading (-113..-51
	// dBm), which is all an older or unknown modem gives.
	RSSIdBm *float64
	// CellID is the serving cell's identity in hexadecimal (the 28-bit
	// E-UTRAN or 36-bit NR cell identity), empty when unknown.
	CellID string
	// TAC is the tracking area code in hexadecimal, empty when unknown.
	TAC string
	// Band is the serving cell's band number (E-UTRA band 20 is 20, NR band
	// n78 is 78), 0 when unknown.
	Band int
	// NRRSRPdBm, NRRSRQdB and NRSINRdB describe the 5G NR signal (the
	// secondary cell in 5G NSA, the serving cell in 5G SA).
	NRRSRPdBm *float64
	NRRSRQdB  *float64
	NRSINRdB  *float64
	// QualityPct is the modem's own 0-100 % signal quality where it gives
	// one (ModemManager's signal-quality).
	QualityPct *float64
}

// Traffic is the data carried by the modem's packet data connections
// (bearers) as the modem or its manager counts it.
type Traffic struct {
	Time time.Time
	// Connected is true when at least one bearer is connected.
	Connected bool
	// Interface is the network interface of the connected bearer, e.g.
	// "wwan0", empty when unknown.
	Interface string
	// RxBytes and TxBytes count the current connections' bytes; they start
	// again from zero when a bearer reconnects.
	RxBytes, TxBytes *uint64
	// TotalRxBytes and TotalTxBytes count the bytes of every connection of
	// the bearers since they were created.
	TotalRxBytes, TotalTxBytes *uint64
	// Duration is how long the current connection has been up.
	Duration *time.Duration
}

// Quality turns an LTE RSRP into the plain words a control-room operator
// reads: "excellent", "good", "fair", "poor", "none" or "unknown".
func (s Signal) Quality() string {
	switch {
	case !s.Registered:
		return "none"
	case s.RSRPdBm == nil:
		return "unknown"
	case *s.RSRPdBm >= -80:
		return "excellent"
	case *s.RSRPdBm >= -90:
		return "good"
	case *s.RSRPdBm >= -100:
		return "fair"
	default:
		return "poor"
	}
}

// Modem reads the cellular link.
type Modem interface {
	Signal(ctx context.Context) (Signal, error)
}

// TrafficCounter reads how much data the modem's connections carried.
type TrafficCounter interface {
	Traffic(ctx context.Context) (Traffic, error)
}

// Clock reads the modem's own clock, which the network sets: a fallback
// time source for a unit without NTP or GNSS.
type Clock interface {
	Clock(ctx context.Context) (time.Time, error)
}
