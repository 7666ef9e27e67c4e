package control

import (
	"context"
	"fmt"
	"time"

	"github.com/outpost-cctv/outpost/agent/audit"
)

// AuditList is a unit's access audit trail as Audit reads it: the
// entries, oldest first, and the unit's verification of its whole hash
// chain (ChainOK, Problems, Head). More is true when entries beyond the
// limit asked for remain.
type AuditList = audit.ListResult

// Audit reads the access audit trail of unit: who asked it for footage,
// snapshots, configuration or updates since since (zero: all it holds),
// for whom and why, and with what result. It follows the unit's pages
// until limit entries (limit <= 0: all of them).
func (c *Client) Audit(ctx context.Context, unit string, since time.Time, limit int) (AuditList, error) {
	var out AuditList
	args := audit.ListArgs{}
	if !since.IsZero() {
		args.Since = since.UTC()
	}
	for {
		args.Limit = audit.MaxListLimit
		if limit > 0 {
			args.Limit = min(limit-len(out.Entries), audit.MaxListLimit)
		}
		var page audit.ListResult
		if err := c.Call(ctx, unit, audit.ListCommand, args, &page); err != nil {
			return out, err
		}
		entries := append(out.Entries, page.Entries...)
		out = page
		out.Entries = entries
		if out.Entries == nil {
			out.Entries = []audit.Entry{}
		}
		if !page.More || len(page.Entries) == 0 {
			return out, nil
		}
		last := page.Entries[len(page.Entries)-1].Seq
		if last <= args.AfterSeq {
			return out, fmt.Errorf("control: unit %s sent audit page ending at entry %d, not after %d: its agent is at fault; ask with a later --since", unit, last, args.AfterSeq)
		}
		args.AfterSeq = last
		if limit > 0 && len(out.Entries) >= limit {
			return out, nil
		}
	}
}
