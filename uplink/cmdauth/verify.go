package cmdauth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/internal/clock"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Reasons of a refusal, stable strings for logs and the audit trail.
const (
	ReasonUnsigned     = "unsigned"
	ReasonUnknownKey   = "unknown_key"
	ReasonWrongUnit    = "wrong_unit"
	ReasonBadSignature = "bad_signature"
	ReasonExpired      = "expired"
	ReasonTTL          = "ttl_too_long"
	ReasonFuture       = "issued_in_future"
	ReasonReplay       = "replay"
	ReasonTooOld       = "too_old"
	ReasonStorage      = "storage" // the replay state could not be saved
)

// Error is a refusal. Its message is for the operator and says what to do;
// ReplyCode is the wire code to answer with (wire.CodeUnauthorized, or
// wire.CodeUnavailable when the unit could not record the request).
type Error struct {
	Reason  string
	Message string
	Err     error // the cause, for ReasonStorage
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

// ReplyCode is the reply's error code for this refusal.
func (e *Error) ReplyCode() string {
	if e.Reason == ReasonStorage {
		return wire.CodeUnavailable
	}
	return wire.CodeUnauthorized
}

func refuse(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Options configures a Verifier. Zero durations take the defaults noted.
type Options struct {
	// Unit is this unit's id; signatures for another are refused.
	Unit string
	// Keys are the operators' public keys by key name.
	Keys map[string]ed25519.PublicKey
	// Require refuses unsigned requests; without it they are run and
	// recorded as unverified.
	Require bool
	// StatePath is the replay state's file. Empty keeps it in memory only
	// (tests; a unit must set it, or replays work after each restart).
	StatePath string
	// Window is how far below the highest issue time seen a request may
	// still be issued, for out-of-order delivery (default 5 min).
	Window time.Duration
	// MaxTTL is the longest validity accepted, expiry minus issue
	// (default 1 h).
	MaxTTL time.Duration
	// Skew is how far ahead of the unit's clock an issue time may be
	// (default 2 min).
	Skew time.Duration
	// MaxIDs bounds the request ids kept per key (default 4096).
	MaxIDs int
	// Clock defaults to the system clock.
	Clock clock.Clock
	// Log defaults to discarding.
	Log *slog.Logger
}

// Verifier checks signed requests and documents for one unit, and keeps
// the replay state. It is safe for concurrent use.
type Verifier struct {
	o   Options
	clk clock.Clock
	log *slog.Logger

	mu sync.Mutex
	st state
}

// NewVerifier checks o and loads the replay state from o.StatePath.
func NewVerifier(o Options) (*Verifier, error) {
	if o.Unit == "" {
		return nil, errors.New("cmdauth: no unit id: set the unit's id")
	}
	for name, k := range o.Keys {
		if !wire.ValidKeyName(name) {
			return nil, fmt.Errorf("cmdauth: operator key name %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-'", name)
		}
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("cmdauth: operator key %q is %d bytes, an Ed25519 public key is %d", name, len(k), ed25519.PublicKeySize)
		}
	}
	if o.Require && len(o.Keys) == 0 {
		return nil, errors.New("cmdauth: signed commands are required but no operator key is listed: add the operators' public keys, or the unit accepts no command at all")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Window, 5*time.Minute)
	def(&o.MaxTTL, time.Hour)
	def(&o.Skew, 2*time.Minute)
	if o.MaxIDs <= 0 {
		o.MaxIDs = 4096
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{o: o, clk: o.Clock, log: o.Log}
	st, err := loadState(o.StatePath, o.Unit, o.Clock.Now(), o.Log)
	if err != nil {
		return nil, err
	}
	v.st = st
	return v, nil
}

// Admit is Check; it makes a *Verifier an uplink.Gate.
func (v *Verifier) Admit(name string, req wire.Request) (string, error) { return v.Check(name, req) }

// Check decides whether command name of req may run on this unit, and
// returns who asked: "<key> (signed)" for a signed request, "unverified:
// <from>" for an unsigned one. A refusal is an *Error. A signed request
// admitted is recorded in the replay state, on disk, before Check returns.
func (v *Verifier) Check(name string, req wire.Request) (requester string, err error) {
	if req.Auth == nil {
		if v.o.Require {
			return "", refuse(ReasonUnsigned, "this unit accepts only signed commands; set sign_key in ctl.yaml (or --sign-key) to an operator key the unit lists")
		}
		from := req.From
		if from == "" {
			from = "unknown"
		}
		return "unverified: " + from, nil
	}
	a := req.Auth
	if err := v.verify(a, func() []byte { return commandMessage(a.Unit, name, &req, a) }); err != nil {
		return "", err
	}
	now := v.clk.Now()
	if a.Expires.IsZero() {
		return "", refuse(ReasonTTL, "the signature has no expiry; a command's must expire within %s of its issue: sign it again", v.o.MaxTTL)
	}
	if err := v.checkTimes(a, now, true); err != nil {
		return "", err
	}
	if err := v.record(a.Key, req.ID, a.Issued); err != nil {
		return "", err
	}
	return a.Key + " (signed)", nil
}

// CheckDocument checks the signature of doc, a document of the given kind
// (such as "config.desired") meant for this unit, and returns who signed
// it: "<key> (signed)". An unsigned document (auth nil) is refused when
// signatures are required, and otherwise accepted as "unverified". There
// is no replay state for documents: the caller must refuse a document
// older than the one it runs (the configuration's version number).
func (v *Verifier) CheckDocument(kind string, doc []byte, auth *wire.Auth) (signer string, err error) {
	if auth == nil {
		if v.o.Require {
			return "", refuse(ReasonUnsigned, "this unit accepts only signed %s documents; set sign_key in ctl.yaml (or --sign-key) to an operator key the unit lists", kind)
		}
		return "unverified", nil
	}
	if err := v.verify(auth, func() []byte { return documentMessage(auth.Unit, kind, doc, auth) }); err != nil {
		return "", err
	}
	if err := v.checkTimes(auth, v.clk.Now(), false); err != nil {
		return "", err
	}
	return auth.Key + " (signed)", nil
}

// verify checks the key, the unit and the signature.
func (v *Verifier) verify(a *wire.Auth, msg func() []byte) error {
	pub, ok := v.o.Keys[a.Key]
	if !ok {
		return refuse(ReasonUnknownKey, "key %q is not one this unit lists: add its public key to the unit's configuration, or sign with a listed key", truncate(a.Key, 64))
	}
	if a.Unit != v.o.Unit {
		return refuse(ReasonWrongUnit, "signed for unit %q, but this is unit %q: sign it for this unit", truncate(a.Unit, 64), v.o.Unit)
	}
	sig, err := base64.StdEncoding.DecodeString(a.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return refuse(ReasonBadSignature, "auth.sig is not a base64 Ed25519 signature (64 bytes)")
	}
	if !ed25519.Verify(pub, msg(), sig) {
		return refuse(ReasonBadSignature, "the signature by key %q does not match the request: it was changed after signing, or signed with another key of that name", a.Key)
	}
	return nil
}

// checkTimes checks issue and expiry against now; the expiry is optional
// for documents.
func (v *Verifier) checkTimes(a *wire.Auth, now time.Time, command bool) error {
	if a.Issued.Sub(now) > v.o.Skew {
		return refuse(ReasonFuture, "issued at %s, %s ahead of this unit's clock (%s): one of the two clocks is wrong; check the unit's time (telemetry/system) and the control room's", fmtTime(a.Issued), a.Issued.Sub(now).Round(time.Second), fmtTime(now))
	}
	if a.Expires.IsZero() {
		return nil
	}
	if !a.Expires.After(a.Issued) {
		return refuse(ReasonTTL, "the signature expires (%s) before it was issued (%s): sign it again", fmtTime(a.Expires), fmtTime(a.Issued))
	}
	if command && a.Expires.Sub(a.Issued) > v.o.MaxTTL {
		return refuse(ReasonTTL, "the signature is valid for %s; this unit accepts at most %s: sign it again with a shorter validity", a.Expires.Sub(a.Issued), v.o.MaxTTL)
	}
	if !now.Before(a.Expires) {
		return refuse(ReasonExpired, "the signature expired at %s; it is %s on this unit: send a fresh request (and check the unit's clock if it should not have expired)", fmtTime(a.Expires), fmtTime(now))
	}
	return nil
}

// record admits request id issued at t under key, or refuses it as a
// replay or too old. The state is saved before it returns nil.
func (v *Verifier) record(key, id string, t time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	ks := v.st.Keys[key]
	if ks == nil {
		ks = &keyState{IDs: map[string]time.Time{}}
	}
	if !v.st.Floor.IsZero() && !t.After(v.st.Floor) {
		return refuse(ReasonTooOld, "issued at %s, before this unit's replay record was reset (%s): send a fresh request", fmtTime(t), fmtTime(v.st.Floor))
	}
	if !ks.Floor.IsZero() && !t.After(ks.Floor) {
		return refuse(ReasonTooOld, "issued at %s, at or before the oldest request this unit still remembers for key %q (%s): it is too old or a replay; send a fresh request", fmtTime(t), key, fmtTime(ks.Floor))
	}
	if low := ks.HighWater.Add(-v.o.Window); !ks.HighWater.IsZero() && t.Before(low) {
		return refuse(ReasonTooOld, "issued at %s, more than %s before the latest command admitted with key %q (%s): it is too old or a replay; send a fresh request", fmtTime(t), v.o.Window, key, fmtTime(ks.HighWater))
	}
	if _, seen := ks.IDs[id]; seen {
		return refuse(ReasonReplay, "request id %s was already admitted with key %q: this is a replay; send a fresh request with a new id", id, key)
	}
	// Keep what the admission changes, so that a failed write can undo it.
	prevHW, prevFloor := ks.HighWater, ks.Floor
	ks.IDs[id] = t
	var pruned map[string]time.Time
	if t.After(ks.HighWater) {
		ks.HighWater = t
		pruned = ks.prune(v.o.Window, v.o.MaxIDs)
	} else if len(ks.IDs) > v.o.MaxIDs {
		pruned = ks.prune(v.o.Window, v.o.MaxIDs)
	}
	_, known := v.st.Keys[key]
	v.st.Keys[key] = ks
	if err := v.st.save(v.o.StatePath, v.o.Keys); err != nil {
		if known {
			delete(ks.IDs, id)
			maps.Copy(ks.IDs, pruned)
			ks.HighWater, ks.Floor = prevHW, prevFloor
		} else {
			delete(v.st.Keys, key)
		}
		v.log.Error("replay state not saved; signed commands are refused until it can be", "path", v.o.StatePath, "err", err)
		return &Error{Reason: ReasonStorage, Err: err,
			Message: fmt.Sprintf("the unit could not record the request against replays, so it did not run it (%v); retry, and check the unit's storage (health)", err)}
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
