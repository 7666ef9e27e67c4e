package audit

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/outpost-cctv/outpost/uplink"
)

var _ uplink.CommandObserver = (*Log)(nil)

// ObserveCommand records a command's outcome, so that a Log can be the
// session's uplink.CommandOptions.Observer: Action is the command's name,
// Requester who asked, Result "ok" or the reply's code (Detail its
// message), and From, To, Recipient and Reason are taken from the
// arguments of the same names ("at" counts as from). On success Detail
// names the other arguments, with the values of short plain ones; values
// of arguments named like secrets, and objects (a configuration), are not
// recorded. A failure to record is logged: the command has been answered
// already.
func (l *Log) ObserveCommand(r uplink.CommandRecord) {
	e := Entry{Action: r.Name, Requester: r.Requester, RequestID: r.ID, Time: r.Received, Result: "ok"}
	if e.Action == "" {
		e.Action = "command"
	}
	if !r.OK {
		e.Result, e.Detail = r.Code, r.Message
		if e.Result == "" {
			e.Result = "error"
		}
	}
	summary := fromArgs(r.Args, &e)
	if r.OK {
		e.Detail = summary
	}
	if _, err := l.Append(e); err != nil {
		l.log.Error("an access was not recorded in the audit trail", "command", r.Name, "id", r.ID, "requester", r.Requester, "err", err)
	}
}

// fromArgs fills the entry's range and disclosure fields from a command's
// arguments and returns a short summary of the rest.
func fromArgs(raw json.RawMessage, e *Entry) string {
	var args map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &args) != nil {
		return ""
	}
	str := func(k string) (string, bool) {
		var s string
		v, ok := args[k]
		return s, ok && json.Unmarshal(v, &s) == nil
	}
	tm := func(k string) time.Time {
		var t time.Time
		if v, ok := args[k]; ok && json.Unmarshal(v, &t) == nil {
			return t
		}
		return time.Time{}
	}
	e.From, e.To = tm("from"), tm("to")
	if e.From.IsZero() {
		e.From = tm("at")
	}
	if s, ok := str("recipient"); ok {
		e.Recipient = s
	}
	if s, ok := str("reason"); ok {
		e.Reason = s
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		switch k {
		case "from", "to", "at", "recipient", "reason":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := bytes.TrimSpace(args[k])
		switch {
		case secretName(k), len(v) == 0, v[0] == '{', v[0] == '[', len(v) > 64:
			parts = append(parts, k)
		default:
			parts = append(parts, k+"="+strings.Trim(string(v), `"`))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "args: " + strings.Join(parts, ", ")
}

func secretName(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "secret", "token", "key", "psk", "credential", "url", "signature"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
