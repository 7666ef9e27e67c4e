package ota

import "errors"

// The kinds of refusal. Every error that refuses an update wraps one of
// them, so callers choose with errors.Is, and is a *RefusedError whose
// Reason says in plain words what happened and what to do.
var (
	// ErrNoKeys: no release public key is configured, so nothing can be
	// verified and nothing is installed.
	ErrNoKeys = errors.New("no release key configured: updates are refused, not installed unchecked")
	// ErrNotBundle: the file does not start with the bundle magic.
	ErrNotBundle = errors.New("not a release bundle")
	// ErrTruncated: the file is shorter than its header says.
	ErrTruncated = errors.New("release bundle truncated")
	// ErrFormat: a header field is out of range, or the bundle was made
	// by a newer outpostctl.
	ErrFormat = errors.New("release bundle malformed")
	// ErrSignature: no pinned key verifies the manifest.
	ErrSignature = errors.New("release signature invalid")
	// ErrManifest: the signed manifest is not one this agent understands.
	ErrManifest = errors.New("release manifest invalid")
	// ErrPayloadHash: the payload is not the one the manifest was signed
	// for.
	ErrPayloadHash = errors.New("release payload does not match its manifest")
	// ErrBinaryHash: the binary rebuilt from the payload, or read back
	// from the slot, is not the one the manifest names.
	ErrBinaryHash = errors.New("installed binary does not match its manifest")
	// ErrArch: the release is for another processor.
	ErrArch = errors.New("release is for another architecture")
	// ErrDowngrade: the release is not newer than the running version and
	// its manifest does not allow a downgrade.
	ErrDowngrade = errors.New("release would downgrade the agent")
	// ErrMinFrom: the running version is older than the release accepts.
	ErrMinFrom = errors.New("running version too old for this release")
	// ErrVersion: a version is not a semantic version.
	ErrVersion = errors.New("version unreadable")
	// ErrDeltaBase: the delta was made against another binary than the one
	// the unit runs.
	ErrDeltaBase = errors.New("delta made for another binary")
	// ErrPrecondition: the unit cannot take an update now (battery, disk).
	// This one is temporary: try again later.
	ErrPrecondition = errors.New("unit not ready for an update")
	// ErrState: the operation does not fit the update in progress.
	ErrState = errors.New("update state does not allow this")
)

// RefusedError is a refusal with its reason in plain words.
type RefusedError struct {
	Kind   error  // one of the Err* values of this package
	Reason string // what happened and what to do
}

func (e *RefusedError) Error() string { return "ota: " + e.Reason }

// Unwrap returns the kind, for errors.Is.
func (e *RefusedError) Unwrap() error { return e.Kind }

// Temporary reports whether trying again later may succeed without a new
// bundle (a low battery, a full disk). Every other refusal needs another
// bundle or another key.
func (e *RefusedError) Temporary() bool { return e.Kind == ErrPrecondition }

func refuse(kind error, reason string) error {
	return &RefusedError{Kind: kind, Reason: reason}
}

// Reason returns the plain reason of a refusal, or err's text.
func Reason(err error) string {
	var r *RefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return err.Error()
}
