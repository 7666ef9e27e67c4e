// Package hal is the hardware abstraction layer of the Outpost agent.
//
// Each kind of hardware has a package holding a small interface and its
// reading types (hal/camera, hal/power, hal/modem), with one sub-package per
// backend: real drivers for the boards units carry, and a simulated backend
// (…/sim) good enough to run and test the whole agent on a laptop.
//
// Readings never carry a fake zero: a value the hardware cannot give is
// absent (a nil pointer), which the wire protocol reports as null.
package hal
