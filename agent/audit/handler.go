package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// ListCommand is the command the control room reads the log with.
const ListCommand = "audit.list"

// Bounds of an audit.list reply, which travels over a metered link and
// must fit the broker's message size.
const (
	DefaultListLimit = 200
	MaxListLimit     = 1000
	// maxListBytes bounds the entries of one reply (JSON); the rest is
	// left for the next page.
	maxListBytes = 192 << 10
	maxProblems  = 20
)

// ListArgs are the arguments of audit.list.
type ListArgs struct {
	// Since selects entries at or after this time (RFC 3339); zero: all.
	Since time.Time `json:"since,omitzero"`
	// AfterSeq selects entries after this sequence: the next page starts
	// after the last entry of the one before.
	AfterSeq uint64 `json:"after_seq,omitempty"`
	// Limit is the most entries to return (default 200, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// ListResult is the reply of audit.list.
type ListResult struct {
	Entries []Entry `json:"entries"`
	// More is true when entries were left out for the next page (ask
	// again with after_seq set to the last entry's seq).
	More bool `json:"more"`
	// Head is the hash of the unit's last entry, HeadSeq its sequence.
	Head    string `json:"head"`
	HeadSeq uint64 `json:"head_seq"`
	// FirstSeq is the oldest entry the unit still holds.
	FirstSeq uint64 `json:"first_seq"`
	// ChainOK is true when Verify found the whole log intact; Problems
	// lists (the first few of) what it found otherwise.
	ChainOK  bool     `json:"chain_ok"`
	Problems []string `json:"problems,omitempty"`
}

// ListHandler is the handler of audit.list, for uplink.Session.Handle:
// the entries since args.since, and the verification of the whole chain.
func (l *Log) ListHandler() func(context.Context, uplink.Request) (any, error) {
	return func(ctx context.Context, req uplink.Request) (any, error) {
		var a ListArgs
		if err := req.DecodeArgs(&a); err != nil {
			return nil, err
		}
		if a.Limit < 0 {
			return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf("limit %d is negative: give 1 to %d, or leave it out for %d", a.Limit, MaxListLimit, DefaultListLimit)}
		}
		if a.Limit == 0 {
			a.Limit = DefaultListLimit
		}
		a.Limit = min(a.Limit, MaxListLimit)
		return l.listPage(ctx, a)
	}
}

func (l *Log) listPage(ctx context.Context, a ListArgs) (ListResult, error) {
	es, more, err := l.list(a.Since, a.AfterSeq, a.Limit)
	if err != nil {
		return ListResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return ListResult{}, err
	}
	// Keep the reply within its byte budget.
	size := 0
	for i, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			return ListResult{}, fmt.Errorf("audit: encode entry %d: %w", e.Seq, err)
		}
		size += len(b) + 1
		if size > maxListBytes && i > 0 {
			es, more = es[:i], true
			break
		}
	}
	rep, err := l.Verify()
	if err != nil {
		return ListResult{}, err
	}
	res := ListResult{Entries: es, More: more, Head: rep.Head, HeadSeq: rep.LastSeq, FirstSeq: rep.FirstSeq, ChainOK: rep.OK}
	if res.Entries == nil {
		res.Entries = []Entry{}
	}
	for i, p := range rep.Problems {
		if i == maxProblems {
			res.Problems = append(res.Problems, fmt.Sprintf("and %d more problems", len(rep.Problems)-maxProblems))
			break
		}
		res.Problems = append(res.Problems, p.String())
	}
	return res, nil
}
