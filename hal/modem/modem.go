// Package modem defines the readings the agent takes from a unit's cellular
// modem: registration, radio technology and signal quality.
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
