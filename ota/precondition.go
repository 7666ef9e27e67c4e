package ota

import (
	"context"
	"fmt"
)

// Precondition decides whether the unit may install the release m now. It
// returns nil, or a refusal of kind ErrPrecondition saying why.
type Precondition func(ctx context.Context, m Manifest) error

// AllOf checks each precondition in turn.
func AllOf(ps ...Precondition) Precondition {
	return func(ctx context.Context, m Manifest) error {
		for _, p := range ps {
			if p == nil {
				continue
			}
			if err := p(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}
}

// BatteryAtLeast refuses while the battery's state of charge, read by soc,
// is below pct percent, or cannot be read: an update must not be cut short
// by a flat battery.
func BatteryAtLeast(pct float64, soc func(ctx context.Context) (float64, error)) Precondition {
	return func(ctx context.Context, m Manifest) error {
		v, err := soc(ctx)
		if err != nil {
			return refuse(ErrPrecondition, fmt.Sprintf("the battery's charge cannot be read (%v): not installing %s until it can", err, m.Version))
		}
		if v < pct {
			return refuse(ErrPrecondition, fmt.Sprintf("the battery is at %.0f%%, below the %.0f%% an update needs: %s will be installed once it has charged", v, pct, m.Version))
		}
		return nil
	}
}

// FreeSpaceAtLeast refuses unless the file system holding dir has room
// for the new binary and margin bytes more.
func FreeSpaceAtLeast(dir string, margin int64) Precondition {
	return func(ctx context.Context, m Manifest) error {
		free, err := freeBytes(dir)
		if err != nil {
			return refuse(ErrPrecondition, fmt.Sprintf("the free space under %s cannot be read (%v): not installing %s", dir, err, m.Version))
		}
		if need := uint64(m.Size + margin); free < need {
			return refuse(ErrPrecondition, fmt.Sprintf("%s has %d MiB free, installing %s needs %d MiB: free space (old footage, logs) and try again", dir, free>>20, m.Version, (need+1<<20-1)>>20))
		}
		return nil
	}
}
