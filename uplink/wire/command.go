package wire

import (
	"encoding/json"
	"regexp"
	"time"
)

// Request is a command from the control room, published to cmd/<name>
// (QoS 1, not retained).
type Request struct {
	Header
	ID       string          `json:"id"`
	Deadline *time.Time      `json:"deadline,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"`
}

// Reply answers a Request on reply/<id> (QoS 1, not retained).
type Reply struct {
	Header
	ID     string          `json:"id"`
	OK     bool            `json:"ok"`
	Error  *ReplyError     `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// ReplyError says why a command failed. Code is one of the stable strings
// below; Message is for a person.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Reply error codes.
const (
	CodeBadRequest       = "bad_request"
	CodeUnknownCommand   = "unknown_command"
	CodeTooLarge         = "too_large"
	CodeDeadlineExceeded = "deadline_exceeded"
	CodeBusy             = "busy"
	CodeNotFound         = "not_found"
	CodeInternal         = "internal"
)

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidRequestID reports whether id can name a request (and its reply
// topic): 1-64 characters of A-Z, a-z, 0-9, '_' and '-'.
func ValidRequestID(id string) bool { return requestIDRe.MatchString(id) }
