package ota

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// Failpoints kill the agent at a named step of an update, so that crash
// tests can cut a real process at a precise point, as a power cut would
// (etcd's failpoints serve the same purpose). They exist for those tests
// only and are inert unless EnvFailpoint is set in the agent's
// environment; no configuration file can set it.
//
// EnvFailpoint names one point, or several separated by commas. When
// EnvFailpointOnce names a file, a point fires only if that file does not
// exist, and creates it first: the agent the launcher starts again after
// the kill, with the same environment, goes through.
const (
	EnvFailpoint     = "OUTPOST_OTA_FAILPOINT"
	EnvFailpointOnce = "OUTPOST_OTA_FAILPOINT_ONCE"
)

// The failpoints, in the order an update reaches them.
const (
	// FailMidDownload: half of the bundle's chunks have arrived (agent).
	FailMidDownload = "mid:download"
	// FailMidVerify: the bundle has arrived whole and is being verified;
	// the state is still downloading.
	FailMidVerify = "mid:verify"
	// FailAfterVerified: the state verified is saved, nothing is written
	// to the new slot yet.
	FailAfterVerified = "after:verified"
	// FailMidInstall: the new slot's temporary file is written but not
	// synced nor renamed.
	FailMidInstall = "mid:install"
	// FailAfterInstalled: the state installed is saved, the trial not
	// started.
	FailAfterInstalled = "after:installed"
	// FailAfterSwitch: the trial is saved and current points at the new
	// slot; the agent has not restarted into it.
	FailAfterSwitch = "after:switch"
	// FailMidTrial: the new release runs on trial and is about to be
	// confirmed (agent).
	FailMidTrial = "mid:trial"
)

// Failpoints lists every failpoint.
var Failpoints = []string{FailMidDownload, FailMidVerify, FailAfterVerified, FailMidInstall, FailAfterInstalled, FailAfterSwitch, FailMidTrial}

// Failpoint kills the process with SIGKILL if EnvFailpoint names point
// (and EnvFailpointOnce allows it); otherwise, and always on systems
// without SIGKILL, it does nothing.
func Failpoint(point string) {
	if !failpointArmed(point, os.Getenv) {
		return
	}
	killSelf()
}

// failpointArmed reports whether point fires, creating the once-marker
// when it does.
func failpointArmed(point string, getenv func(string) string) bool {
	set := getenv(EnvFailpoint)
	if set == "" {
		return false
	}
	named := false
	for _, p := range strings.Split(set, ",") {
		named = named || strings.TrimSpace(p) == point
	}
	if !named {
		return false
	}
	once := getenv(EnvFailpointOnce)
	if once == "" {
		return true
	}
	f, err := os.OpenFile(once, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false
	}
	if err != nil {
		// A marker that cannot be made would let the point fire at
		// every start, a crash loop the test did not ask for.
		return false
	}
	f.WriteString(point + "\n")
	err = f.Sync()
	f.Close()
	return err == nil
}
