package agent

import "golang.org/x/sys/unix"

// clockSynced asks the kernel whether the clock is synchronised (adjtimex:
// TIME_ERROR means NTP has not disciplined it).
func clockSynced() (synced, known bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, false
	}
	return state != unix.TIME_ERROR, true
}
