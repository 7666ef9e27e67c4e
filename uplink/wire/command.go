package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is a command from the control room, published to cmd/<name>
// (QoS 1, not retained).
type Request struct {
	Header
	// ID is chosen by the control room: 1-64 characters of [A-Za-z0-9_-],
	// unique per unit. The reply goes to reply/<id>.
	ID string `json:"id"`
	// Deadline, when set, is when the control room stops waiting; a
	// request received after it is not executed.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Args are the command's arguments, a JSON value the command defines.
	Args json.RawMessage `json:"args,omitempty"`
	// Auth, when present, is the control room's signature of the request
	// (see package uplink/cmdauth for what is signed and how it is
	// checked).
	Auth *Auth `json:"auth,omitempty"`
	// From names who says they sent an unsigned request (an operator, a
	// user@host). It is a claim, not verified: the unit records it as
	// such.
	From string `json:"from,omitempty"`
}

// Auth is the signature of a request or of a document (such as
// config/desired) by a control-room operator's Ed25519 key.
type Auth struct {
	// Key is the name of the operator's key, as the unit's configuration
	// lists it.
	Key string `json:"key"`
	// Unit is the unit the signature is for; it is also part of what is
	// signed, and only carried so that a unit can say "signed for another
	// unit" rather than "bad signature".
	Unit string `json:"unit"`
	// Issued is when it was signed; Expires, when set, is when it stops
	// being accepted.
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires,omitzero"`
	// Sig is the Ed25519 signature, in standard base64 with padding.
	Sig string `json:"sig"`
}

// MaxFromLen bounds Request.From.
const MaxFromLen = 128

var keyNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidKeyName reports whether name can name an operator's key: 1-64
// characters of A-Z, a-z, 0-9, '_', '.' and '-', starting with a letter or
// digit.
func ValidKeyName(name string) bool { return keyNameRe.MatchString(name) }

// Reply is the unit's answer to a Request, published to reply/<id> (QoS 1,
// not retained).
type Reply struct {
	Header
	ID     string          `json:"id"`
	OK     bool            `json:"ok"`
	Error  *ReplyError     `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// ReplyError says why a request failed. Code is one of the Code constants;
// Message is for a person and names the problem.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *ReplyError) Error() string { return e.Code + ": " + e.Message }

// Error codes of a Reply. They are stable strings: control rooms act on
// them.
const (
	// CodeBadRequest: the payload is not a valid request (malformed JSON,
	// a field of the wrong type, a bad id, bad arguments). Fix the request.
	CodeBadRequest = "bad_request"
	// CodeUnknownCommand: no command of that name on this unit (an older
	// agent version, or a typo).
	CodeUnknownCommand = "unknown_command"
	// CodeTooLarge: the request is larger than the unit accepts.
	CodeTooLarge = "too_large"
	// CodeDeadlineExceeded: the request arrived after its deadline, or the
	// command did not finish before it.
	CodeDeadlineExceeded = "deadline_exceeded"
	// CodeBusy: the unit's command queue is full; retry later with the
	// same id.
	CodeBusy = "busy"
	// CodeNotFound: what the command refers to does not exist (no footage
	// in the range, an unknown transfer).
	CodeNotFound = "not_found"
	// CodeInternal: the command failed on the unit; the message says how.
	CodeInternal = "internal"
	// CodeUnavailable: the unit cannot run the command now (it is
	// stopping, or what the command needs is down); retry with the same id.
	CodeUnavailable = "unavailable"
	// CodeBudgetExhausted: the unit's data budget policy refuses what was
	// asked (see data_policy in telemetry/link).
	CodeBudgetExhausted = "budget_exhausted"
	// CodeUnauthorized: the unit refuses the request's signature, or its
	// lack of one: unsigned where signatures are required, an unknown key,
	// a bad signature, signed for another unit, expired, issued in the
	// future, or a replay. The message says which; the command was not
	// run. Sign with a key the unit knows and send a fresh request.
	CodeUnauthorized = "unauthorized"
)

// InvalidID is the reply id the unit answers on when it cannot read a
// request's id (reply/_invalid). Control rooms must not use ids starting
// with '_'.
const InvalidID = "_invalid"

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidRequestID reports whether id can be used as a request id.
func ValidRequestID(id string) bool { return requestIDRe.MatchString(id) }

var commandNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidCommandName reports whether name can be used as a command name: 1-64
// characters of a-z, 0-9, '.', '_' and '-', starting with a letter or
// digit.
func ValidCommandName(name string) bool { return commandNameRe.MatchString(name) }

// idScanRe finds a plausible id in a payload that is not valid JSON, so
// that the error reply can still reach the requester.
var idScanRe = regexp.MustCompile(`"id"\s*:\s*"([A-Za-z0-9_-]{1,64})"`)

// ScanRequestID looks for a request id in the first 4 KiB of a payload that
// could not be decoded (malformed or too large). It returns "" when there
// is none.
func ScanRequestID(payload []byte) string {
	if len(payload) > 4096 {
		payload = payload[:4096]
	}
	m := idScanRe.FindSubmatch(payload)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func badRequest(format string, args ...any) *ReplyError {
	return &ReplyError{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// DecodeRequest decodes and checks a request payload. On failure the
// ReplyError (code bad_request) names the problem, and the returned
// Request's ID holds the request id when one could be recovered, so the
// error can be answered on reply/<id>.
func DecodeRequest(payload []byte) (Request, *ReplyError) {
	var req Request
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return req, badRequest(`empty payload: send a JSON object such as {"v":1,"id":"r1"}`)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		req.ID = ScanRequestID(trimmed)
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return req, badRequest("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
		case errors.As(err, &te) || trimmed[0] != '{':
			return req, badRequest(`the payload must be a JSON object such as {"v":1,"id":"r1"}, not %s`, jsonKind(trimmed))
		}
		return req, badRequest("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if raw == nil {
		return req, badRequest(`the payload must be a JSON object such as {"v":1,"id":"r1"}, not null`)
	}
	// The id first, so that every later error reaches the requester.
	idRaw, ok := raw["id"]
	if !ok {
		return req, badRequest(`id: missing; every request needs an id of 1-64 characters of A-Z, a-z, 0-9, '_' and '-'`)
	}
	var id string
	if err := json.Unmarshal(idRaw, &id); err != nil {
		return req, badRequest("id: want a string, got %s", jsonKind(idRaw))
	}
	if !ValidRequestID(id) {
		return req, badRequest("id: %q is not 1-64 characters of A-Z, a-z, 0-9, '_' and '-'", truncate(id, 80))
	}
	req.ID = id

	vRaw, ok := raw["v"]
	if !ok {
		return req, badRequest("v: missing; send the schema version %d", Version)
	}
	var v int
	if err := json.Unmarshal(vRaw, &v); err != nil {
		return req, badRequest("v: want the whole number %d, got %s", Version, jsonKind(vRaw))
	}
	if v != Version {
		return req, badRequest("v: version %d is not supported; this unit speaks version %d", v, Version)
	}
	req.V = v

	if tsRaw, ok := raw["ts"]; ok && !isNull(tsRaw) {
		ts, err := decodeTime(tsRaw)
		if err != nil {
			return req, badRequest("ts: %v", err)
		}
		req.TS = ts
	}
	if dRaw, ok := raw["deadline"]; ok && !isNull(dRaw) {
		d, err := decodeTime(dRaw)
		if err != nil {
			return req, badRequest("deadline: %v", err)
		}
		req.Deadline = &d
	}
	if aRaw, ok := raw["args"]; ok && !isNull(aRaw) {
		req.Args = append(json.RawMessage(nil), aRaw...)
	}
	if fRaw, ok := raw["from"]; ok && !isNull(fRaw) {
		var from string
		if err := json.Unmarshal(fRaw, &from); err != nil {
			return req, badRequest("from: want a string, got %s", jsonKind(fRaw))
		}
		if len(from) > MaxFromLen || !printable(from) {
			return req, badRequest("from: %q is not up to %d printable characters", truncate(from, 80), MaxFromLen)
		}
		req.From = from
	}
	if auRaw, ok := raw["auth"]; ok && !isNull(auRaw) {
		a, rerr := DecodeAuth(auRaw)
		if rerr != nil {
			return req, rerr
		}
		req.Auth = a
	}
	return req, nil
}

// DecodeAuth decodes and checks the shape of an "auth" object (not its
// signature: see package uplink/cmdauth). Errors name the field, under
// "auth.".
func DecodeAuth(raw json.RawMessage) (*Auth, *ReplyError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, badRequest("auth: want an object with key, unit, issued, expires and sig, got %s", jsonKind(raw))
	}
	for k := range m {
		switch k {
		case "key", "unit", "issued", "expires", "sig":
		default:
			return nil, badRequest("auth: unknown field %q; an auth object has key, unit, issued, expires and sig", truncate(k, 40))
		}
	}
	str := func(field string, maxLen int) (string, *ReplyError) {
		r, ok := m[field]
		if !ok {
			return "", badRequest("auth.%s: missing", field)
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return "", badRequest("auth.%s: want a string, got %s", field, jsonKind(r))
		}
		if len(s) > maxLen {
			return "", badRequest("auth.%s: longer than %d characters", field, maxLen)
		}
		return s, nil
	}
	var a Auth
	var rerr *ReplyError
	if a.Key, rerr = str("key", 64); rerr != nil {
		return nil, rerr
	}
	if !ValidKeyName(a.Key) {
		return nil, badRequest("auth.key: %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-'", truncate(a.Key, 80))
	}
	if a.Unit, rerr = str("unit", 64); rerr != nil {
		return nil, rerr
	}
	if a.Sig, rerr = str("sig", 128); rerr != nil {
		return nil, rerr
	}
	iRaw, ok := m["issued"]
	if !ok || isNull(iRaw) {
		return nil, badRequest("auth.issued: missing")
	}
	t, err := decodeTime(iRaw)
	if err != nil {
		return nil, badRequest("auth.issued: %v", err)
	}
	a.Issued = t
	if eRaw, ok := m["expires"]; ok && !isNull(eRaw) {
		t, err := decodeTime(eRaw)
		if err != nil {
			return nil, badRequest("auth.expires: %v", err)
		}
		a.Expires = t
	}
	return &a, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// DecodeReply decodes and checks a reply payload, for the control room.
func DecodeReply(payload []byte) (Reply, error) {
	var r Reply
	if err := json.Unmarshal(payload, &r); err != nil {
		return Reply{}, fmt.Errorf("wire: unreadable reply: %w", err)
	}
	if r.V != Version {
		return Reply{}, fmt.Errorf("wire: reply version %d is not supported (want %d)", r.V, Version)
	}
	if r.ID != InvalidID && !ValidRequestID(r.ID) {
		return Reply{}, fmt.Errorf("wire: reply id %q is not a request id", truncate(r.ID, 80))
	}
	if !r.OK && r.Error == nil {
		return Reply{}, errors.New("wire: a failed reply carries no error")
	}
	if r.OK && r.Error != nil {
		return Reply{}, errors.New("wire: a successful reply carries an error")
	}
	return r, nil
}

func decodeTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time such as \"2026-11-25T12:00:00Z\", got %s", jsonKind(raw))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as \"2026-11-25T12:00:00Z\"", truncate(s, 80))
	}
	return t.UTC(), nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind names the kind of a JSON value, for messages.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
