package control

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"time"

	"github.com/outpost-cctv/outpost/uplink/wire"
)

// retained reads the retained message of topic, or reports false when the
// broker holds none.
func (c *Client) retained(ctx context.Context, topic string) ([]byte, bool, error) {
	sub, unsub, err := c.subscribe(ctx, topic, 1)
	if err != nil {
		return nil, false, err
	}
	defer unsub()
	// A retained message arrives right after the subscription is granted;
	// its absence after a short wait means the broker has none.
	t := time.NewTimer(1500 * time.Millisecond)
	defer t.Stop()
	select {
	case m := <-sub.ch:
		return m.payload, true, nil
	case <-t.C:
		return nil, false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// Reported returns the configuration a unit last reported (retained on
// config/reported, so it is known while the unit is offline).
func (c *Client) Reported(ctx context.Context, unit string) (wire.ConfigReported, error) {
	if !validUnit(unit) {
		return wire.ConfigReported{}, fmt.Errorf("control: %q is not a unit id", unit)
	}
	p, ok, err := c.retained(ctx, c.topics(unit).ConfigReported())
	if err != nil {
		return wire.ConfigReported{}, err
	}
	if !ok {
		return wire.ConfigReported{}, &OfflineError{Unit: unit}
	}
	var r wire.ConfigReported
	if err := json.Unmarshal(p, &r); err != nil {
		return wire.ConfigReported{}, fmt.Errorf("control: unit %s: unreadable config/reported: %w", unit, err)
	}
	return r, nil
}

// Desired returns the change waiting on config/desired for a unit, if any.
func (c *Client) Desired(ctx context.Context, unit string) (wire.ConfigDesired, bool, error) {
	p, ok, err := c.retained(ctx, c.topics(unit).ConfigDesired())
	if err != nil || !ok {
		return wire.ConfigDesired{}, false, err
	}
	d, err := wire.DecodeConfigDesired(p)
	if err != nil {
		return wire.ConfigDesired{}, false, fmt.Errorf("control: unit %s: %w", unit, err)
	}
	return d, true, nil
}

// WatchReported calls fn with every config/reported of unit, the retained
// one first, until fn returns true or ctx is done.
func (c *Client) WatchReported(ctx context.Context, unit string, fn func(wire.ConfigReported) bool) error {
	sub, unsub, err := c.subscribe(ctx, c.topics(unit).ConfigReported(), 16)
	if err != nil {
		return err
	}
	defer unsub()
	for {
		select {
		case m := <-sub.ch:
			var r wire.ConfigReported
			if err := json.Unmarshal(m.payload, &r); err != nil {
				continue
			}
			if fn(r) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PushConfig publishes a change (retained) on config/desired, where the
// unit takes it now or when it next connects.
func (c *Client) PushConfig(ctx context.Context, unit string, d wire.ConfigDesired) error {
	if !validUnit(unit) {
		return fmt.Errorf("control: %q is not a unit id", unit)
	}
	d.Header = wire.NewHeader(time.Now())
	if c.signKey != nil {
		// Retained: it may wait days for an offline unit, so the
		// signature does not expire; the version number stops replays.
		doc, err := d.SignedBytes()
		if err != nil {
			return err
		}
		if d.Auth, err = cmdauth.SignDocument(c.signKey, c.signName, unit, "config.desired", doc, time.Now(), 0); err != nil {
			return fmt.Errorf("control: signing the configuration: %w", err)
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if len(b) > wire.MaxConfigBytes {
		return fmt.Errorf("control: the configuration is %d bytes; a unit takes at most %d", len(b), wire.MaxConfigBytes)
	}
	return c.c.Publish(ctx, c.topics(unit).ConfigDesired(), 1, true, b)
}

// Health returns the health a unit last reported (retained, so it is known
// while the unit is offline).
func (c *Client) Health(ctx context.Context, unit string) (wire.Health, error) {
	if !validUnit(unit) {
		return wire.Health{}, fmt.Errorf("control: %q is not a unit id", unit)
	}
	p, ok, err := c.retained(ctx, c.topics(unit).Health())
	if err != nil {
		return wire.Health{}, err
	}
	if !ok {
		return wire.Health{}, &OfflineError{Unit: unit}
	}
	var h wire.Health
	if err := json.Unmarshal(p, &h); err != nil {
		return wire.Health{}, fmt.Errorf("control: unit %s: unreadable health: %w", unit, err)
	}
	return h, nil
}
