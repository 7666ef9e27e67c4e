package control

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outpost-cctv/outpost/uplink/cmdauth"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Client is a control-room connection to the fleet's broker.
type Client struct {
	c      conn
	prefix string
	log    *slog.Logger
	// signKey and signName sign every request when set (SetSigner);
	// otherwise requests carry from, an unverified claim.
	signKey  ed25519.PrivateKey
	signName string
	from     string
}

// Dial connects to the broker.
func Dial(ctx context.Context, o Options, log *slog.Logger) (*Client, error) {
	if o.Prefix == "" {
		o.Prefix = "outpost"
	}
	if o.ClientID == "" {
		o.ClientID = "outpostctl-" + randomID(6)
	}
	c, err := dial(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, prefix: o.Prefix, log: log, from: localUser()}, nil
}

// SetSigner makes Call sign every request with the operator's Ed25519 key,
// named name as units list it (see package uplink/cmdauth). Call it before
// the client is used.
func (c *Client) SetSigner(name string, key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("control: the signing key is not an Ed25519 private key")
	}
	if !wire.ValidKeyName(name) {
		return fmt.Errorf("control: signing key name %q is not 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-': rename the key file", name)
	}
	c.signKey, c.signName = key, name
	return nil
}

// localUser is who sends unsigned requests: USER@HOST, as far as known.
func localUser() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	if len(name) > wire.MaxFromLen {
		name = name[:wire.MaxFromLen]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, name)
}

// signTTL is how long a request's signature is valid: until the deadline,
// and a minute more for the two clocks to differ, within the hour units
// accept.
func signTTL(deadline time.Time, now time.Time) time.Duration {
	return min(max(deadline.Sub(now), 0)+time.Minute, 55*time.Minute)
}

// Close disconnects.
func (c *Client) Close() { c.c.Close() }

func (c *Client) topics(unit string) wire.Topics { return wire.Topics{Prefix: c.prefix, Unit: unit} }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// UnitError is a command the unit answered with an error.
type UnitError struct {
	Unit, Command string
	Code, Message string
}

func (e *UnitError) Error() string {
	return fmt.Sprintf("unit %s refused %s: %s (%s)", e.Unit, e.Command, e.Message, e.Code)
}

// OfflineError says a unit is not connected, and since when.
type OfflineError struct {
	Unit   string
	Since  time.Time // zero when the unit was never seen
	Reason string
}

func (e *OfflineError) Error() string {
	if e.Since.IsZero() {
		return fmt.Sprintf("unit %s is unknown to the broker: check the id with 'outpostctl units'", e.Unit)
	}
	ago := time.Since(e.Since).Round(time.Second)
	why := ""
	switch e.Reason {
	case "lost":
		why = ", connection lost"
	case "shutdown":
		why = ", stopped"
	}
	return fmt.Sprintf("unit %s is offline since %s (%s ago%s)", e.Unit, e.Since.Local().Format("2006-01-02 15:04:05"), ago, why)
}

// ErrNoReply means the unit did not answer within the deadline although
// the broker showed it online.
var ErrNoReply = errors.New("no reply from the unit")

// Status reads a unit's retained status. It returns an *OfflineError when
// the unit is offline or unknown.
func (c *Client) Status(ctx context.Context, unit string) (wire.Status, error) {
	got := make(chan []byte, 1)
	topic := c.topics(unit).Status()
	if err := c.c.Subscribe(ctx, topic, 1, func(_ string, p []byte) {
		select {
		case got <- append([]byte(nil), p...):
		default:
		}
	}); err != nil {
		return wire.Status{}, err
	}
	defer c.c.Unsubscribe(context.WithoutCancel(ctx), topic)
	// A retained message arrives right after the subscription is granted;
	// its absence after a short wait means the broker has none.
	t := time.NewTimer(1500 * time.Millisecond)
	defer t.Stop()
	select {
	case p := <-got:
		var st wire.Status
		if err := json.Unmarshal(p, &st); err != nil {
			return wire.Status{}, fmt.Errorf("control: unit %s: unreadable status: %w", unit, err)
		}
		if st.State != wire.Online {
			return st, &OfflineError{Unit: unit, Since: st.TS, Reason: st.Reason}
		}
		return st, nil
	case <-t.C:
		return wire.Status{}, &OfflineError{Unit: unit}
	case <-ctx.Done():
		return wire.Status{}, ctx.Err()
	}
}

// Call sends command name with args to unit and decodes the reply's result
// into result (unless nil). The unit must answer before ctx's deadline
// (default 30 s); when it does not, Call says whether it is offline.
func (c *Client) Call(ctx context.Context, unit, name string, args, result any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	if !validUnit(unit) {
		return fmt.Errorf("control: %q is not a unit id (1-64 of a-z, 0-9, '-')", unit)
	}
	id := randomID(12)
	tp := c.topics(unit)
	replies := make(chan []byte, 1)
	if err := c.c.Subscribe(ctx, tp.Reply(id), 1, func(_ string, p []byte) {
		select {
		case replies <- append([]byte(nil), p...):
		default:
		}
	}); err != nil {
		return err
	}
	defer c.c.Unsubscribe(context.WithoutCancel(ctx), tp.Reply(id))

	req := wire.Request{Header: wire.NewHeader(time.Now()), ID: id}
	if dl, ok := ctx.Deadline(); ok {
		d := dl.UTC()
		req.Deadline = &d
	}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("control: %s arguments: %w", name, err)
		}
		req.Args = b
	}
	if c.signKey != nil {
		now := time.Now()
		ttl := signTTL(now.Add(30*time.Second), now)
		if req.Deadline != nil {
			ttl = signTTL(*req.Deadline, now)
		}
		if err := cmdauth.Sign(c.signKey, c.signName, unit, name, &req, now, ttl); err != nil {
			return fmt.Errorf("control: signing %s: %w", name, err)
		}
	} else {
		req.From = c.from
	}
	b, _ := json.Marshal(req)
	if err := c.c.Publish(ctx, tp.Cmd(name), 1, false, b); err != nil {
		return err
	}
	select {
	case p := <-replies:
		var r wire.Reply
		if err := json.Unmarshal(p, &r); err != nil {
			return fmt.Errorf("control: unit %s sent an unreadable reply to %s: %w", unit, name, err)
		}
		if !r.OK {
			e := &UnitError{Unit: unit, Command: name, Code: wire.CodeInternal, Message: "no error given"}
			if r.Error != nil {
				e.Code, e.Message = r.Error.Code, r.Error.Message
			}
			return e
		}
		if result != nil {
			if err := json.Unmarshal(r.Result, result); err != nil {
				return fmt.Errorf("control: unit %s: unreadable %s result: %w", unit, name, err)
			}
		}
		return nil
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := c.Status(sctx, unit); err != nil {
			return err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("control: %s to unit %s: %w before the deadline; the unit is online, so its link may be slow: retry with a longer --timeout", name, unit, ErrNoReply)
		}
		return ctx.Err()
	}
}

func validUnit(u string) bool {
	if len(u) == 0 || len(u) > 64 {
		return false
	}
	return strings.Trim(u, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// subscription delivers messages of one filter to a channel without ever
// blocking the MQTT client: when the reader falls behind, messages are
// dropped and counted (chunks are re-sent; telemetry is superseded).
type subscription struct {
	ch      chan message
	mu      sync.Mutex
	dropped int
}

type message struct {
	topic   string
	payload []byte
}

func (c *Client) subscribe(ctx context.Context, filter string, buf int) (*subscription, func(), error) {
	s := &subscription{ch: make(chan message, buf)}
	err := c.c.Subscribe(ctx, filter, 0, func(t string, p []byte) {
		select {
		case s.ch <- message{t, append([]byte(nil), p...)}:
		default:
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return s, func() { c.c.Unsubscribe(context.WithoutCancel(ctx), filter) }, nil
}

// RecordedEvent is a trigger event recorded by a unit.
type RecordedEvent struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
}

// Events lists the trigger events (motion, PIR, manual) a unit recorded
// between from and to, oldest first, following the unit's pages.
func (c *Client) Events(ctx context.Context, unit string, from, to time.Time) ([]RecordedEvent, error) {
	var all []RecordedEvent
	for {
		var res struct {
			Events    []RecordedEvent `json:"events"`
			Truncated bool            `json:"truncated"`
		}
		args := map[string]any{"from": from.UTC(), "to": to.UTC()}
		if err := c.Call(ctx, unit, "events.list", args, &res); err != nil {
			return all, err
		}
		all = append(all, res.Events...)
		if !res.Truncated || len(res.Events) == 0 {
			return all, nil
		}
		from = res.Events[len(res.Events)-1].Time.Add(time.Nanosecond)
	}
}
