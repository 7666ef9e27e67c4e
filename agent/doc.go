// Package agent is the Outpost unit agent: it wires the hardware, footage
// store and uplink together from a Config, supervises them as components,
// and runs them until told to stop.
//
// # Lifecycle
//
// Components are started in dependency order by a Supervisor. A component
// that fails (returns an error or panics) is restarted after a jittered,
// capped backoff; the others keep running, so a dead camera never silences
// telemetry. On SIGTERM or SIGINT, components are stopped in reverse order
// within Config.ShutdownTimeout (default 5 s), each flushing what it must.
//
// # Exit codes
//
// The outpost binary exits with one of the codes below (ExitOK, ...), which
// docs/operations.md lists for field engineers and systemd.
package agent

// Exit codes of the outpost binary.
const (
	ExitOK        = 0 // stopped cleanly
	ExitFailure   = 1 // a runtime failure, or a check that found problems
	ExitUsage     = 2 // bad flags or an invalid config: nothing was started
	ExitNoFootage = 3 // an export or snapshot range holds no footage
	ExitTimeout   = 4 // components did not stop within the shutdown bound
	// ExitPowerShutdown: the battery reached the power policy's shutdown
	// level and the agent stopped cleanly; the service manager must not
	// restart it (RestartPreventExitStatus=5).
	ExitPowerShutdown = 5
)
