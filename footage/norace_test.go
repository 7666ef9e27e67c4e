//go:build !race

package footage_test

const raceEnabled = false
