// Package gpio drives the unit's discrete signals on the board's GPIO
// header: a PIR motion sensor and a cabinet tamper switch as inputs, and
// the relay of an IR illuminator as an output.
//
// It holds the small interfaces the agent uses (MotionSensor, TamperSwitch,
// Relay), their implementations over periph's gpio pins (Input, Output), and
// Probe, which reads each configured input once for a field engineer's
// check on site. Pins are found by name through hal/gpio/board on real
// hardware; hal/gpio/sim simulates all three without any.
//
// # Inputs
//
// An Input is debounced: after an edge, the level must hold for
// InputConfig.Debounce with no further edge before a change is reported, so
// the bounces of a switch contact, or the chatter of a PIR's output, give
// one event. The event carries the time of the first edge of the burst.
// The level is also sampled whenever no edge came for a short while, so an
// edge the kernel missed is caught late rather than never.
//
// "Active" is the input's meaning, independent of wiring: for a PIR,
// motion; for a tamper switch, the cabinet open. InputConfig.ActiveLow says
// which level that is.
package gpio
