package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/outpost-cctv/outpost/uplink/wire"
)

// Request is a command from the control room, as a Handler sees it.
type Request struct {
	// Name is the command's name, the last level of cmd/<name>.
	Name string
	// ID is the control room's request id; the reply goes to reply/<id>.
	ID string
	// Deadline is when the control room stops waiting; zero when it did
	// not say. The handler's context ends then.
	Deadline time.Time
	// Args are the command's arguments as sent (a JSON value), nil when
	// none were given.
	Args json.RawMessage
	// Requester says who asked, for the audit trail: what the Gate
	// returned ("alice (signed)", "unverified: bob@ctl-2"), or without a
	// Gate what the request claims ("unverified: ...", "<key> (signature
	// not checked)").
	Requester string
}

// DecodeArgs decodes the arguments into v strictly: unknown fields and
// values of the wrong type are refused with a bad_request CommandError
// naming the field. Missing arguments leave v as it is.
func (r Request) DecodeArgs(v any) error {
	if len(bytes.TrimSpace(r.Args)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(r.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				return CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf("args: want %s, got a JSON %s", jsonTypeName(te.Type.Kind().String()), te.Value)}
			}
			return CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf("args.%s: want %s, got a JSON %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)}
		case errors.As(err, &se):
			return CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf("args: malformed JSON at byte %d", se.Offset)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return CommandError{Code: wire.CodeBadRequest, Message: "args: " + strings.TrimPrefix(err.Error(), "json: ") + " (a typo?)"}
		}
		return CommandError{Code: wire.CodeBadRequest, Message: "args: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if dec.More() {
		return CommandError{Code: wire.CodeBadRequest, Message: "args: data after the JSON value"}
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "a whole number"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return kind
}

// Handler runs a command. Its result is sent as the reply's result (as
// JSON); an error becomes the reply's error: a CommandError (or a
// *wire.ReplyError) chooses the code, a context deadline becomes
// deadline_exceeded, anything else is internal. ctx ends at the request's
// deadline, after CommandOptions.Timeout, or when the agent stops.
type Handler func(ctx context.Context, req Request) (any, error)

// CommandError is a handler's error with a reply code of its choosing
// (wire.CodeNotFound, wire.CodeBadRequest, ...).
type CommandError struct {
	Code    string
	Message string
}

func (e CommandError) Error() string { return e.Code + ": " + e.Message }

// CommandOptions tunes command handling. Zero fields take the defaults
// noted.
type CommandOptions struct {
	// Workers run handlers (default 2) and Queue holds requests waiting
	// for a worker (default 8); a request finding the queue full is
	// answered busy at once.
	Workers, Queue int
	// MaxBytes bounds a request payload (default 16 KiB).
	MaxBytes int
	// Timeout bounds a handler's run when the request has no earlier
	// deadline (default 5 min).
	Timeout time.Duration
	// DedupeEntries and DedupeTTL bound the replies kept to answer
	// repeated request ids (default 256 entries, 30 min).
	DedupeEntries int
	DedupeTTL     time.Duration
	// Gate, when set, admits or refuses each request before its handler
	// runs (signed commands: see package uplink/cmdauth). Nil runs every
	// request, as from anyone.
	Gate Gate
	// Observer, when set, is told the outcome of every request (the
	// audit trail of commands).
	Observer CommandObserver
}

// Gate admits or refuses a request before its handler runs. Admit returns
// who asked (Request.Requester), or an error whose message tells the
// requester why not; the reply's code is wire.CodeUnauthorized unless the
// error has a ReplyCode() string method naming another (wire.CodeUnavailable
// when the gate could not record the request, say).
//
// Admit is called from a command worker, never from the MQTT client's
// goroutine, so it may write to disk; it is called once per request id the
// dedupe cache lets through (a repeat of an admitted request is answered
// from the cache and never reaches it), and may be called concurrently.
type Gate interface {
	Admit(name string, req wire.Request) (requester string, err error)
}

// CommandObserver is told the outcome of each request: refused by the
// gate, a bad request whose id could be read, too large, an unknown
// command, past its deadline, busy, run and succeeded or failed. Repeats
// answered from the dedupe cache are not outcomes of their own.
//
// ObserveCommand is called from one goroutine of the session, never
// concurrently and never from the MQTT client's goroutine, so it may write
// and sync an audit log; while it runs, the workers wait to report, but
// the MQTT client does not (outcomes decided there queue up to 64, then
// are dropped and logged).
type CommandObserver interface {
	ObserveCommand(CommandRecord)
}

// CommandRecord is one request's outcome.
type CommandRecord struct {
	Name, ID string
	// Requester is who asked: see Request.Requester. For outcomes decided
	// before the gate (bad request, unknown command, deadline, busy) it is
	// what the request claims, unverified.
	Requester string
	Args      json.RawMessage
	// Received is when the unit received the request.
	Received time.Time
	OK       bool
	// Code and Message are the reply's error, when not OK.
	Code, Message string
}

func (o *CommandOptions) defaults() {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Queue <= 0 {
		o.Queue = 8
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.DedupeEntries <= 0 {
		o.DedupeEntries = 256
	}
	if o.DedupeTTL <= 0 {
		o.DedupeTTL = 30 * time.Minute
	}
}

// Handle registers the handler of command name, before or after Run;
// registering a name again replaces its handler. Names are 1-64 characters
// of a-z, 0-9, '.', '_' and '-'; Handle panics on another, as on a nil
// handler: both are programming errors.
func (s *Session) Handle(name string, h Handler) {
	if !wire.ValidCommandName(name) || h == nil {
		panic(fmt.Sprintf("uplink: Handle(%q): invalid command name or nil handler", name))
	}
	s.mu.Lock()
	s.handlers[name] = h
	s.mu.Unlock()
}

func (s *Session) handler(name string) Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handlers[name]
}

// commander runs commands off the MQTT client's goroutines: dispatch
// queues them for a bounded pool of workers and answers at once what needs
// no worker (errors, busy, repeats).
type commander struct {
	s     *Session
	o     CommandOptions
	jobs  chan job
	quick chan quickReply // replies decided in dispatch, published by one goroutine
	cache *dedupe
	// obs carries outcomes to the one goroutine that calls the observer;
	// workers wait for room, dispatch never does.
	obs chan CommandRecord
}

type job struct {
	req      Request
	h        Handler
	wreq     wire.Request // as received, for the gate
	received time.Time
}

type quickReply struct {
	id      string
	payload []byte
}

func newCommander(s *Session) *commander {
	o := s.opts.Commands
	return &commander{
		s: s, o: o,
		jobs:  make(chan job, o.Queue),
		quick: make(chan quickReply, 32),
		cache: newDedupe(o.DedupeEntries, o.DedupeTTL),
		obs:   make(chan CommandRecord, 64),
	}
}

// run runs the workers and the quick-reply publisher until ctx ends, then
// waits for them.
func (c *commander) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range c.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-c.jobs:
					c.execute(ctx, j)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-c.quick:
				c.publish(ctx, r.id, r.payload)
			}
		}
	}()
	// The observer outlives the workers, so that a worker's last outcome
	// is observed, and then takes what dispatch left.
	obsDone, obsStop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(obsDone)
		if c.o.Observer == nil {
			return // nothing is ever sent
		}
		for {
			select {
			case r := <-c.obs:
				c.o.Observer.ObserveCommand(r)
			case <-obsStop:
				for {
					select {
					case r := <-c.obs:
						c.o.Observer.ObserveCommand(r)
					default:
						return
					}
				}
			}
		}
	}()
	wg.Wait()
	close(obsStop)
	<-obsDone
	// Requests left in the queue were never run (nor admitted): forget
	// them, so that a retry after the restart runs them.
	for {
		select {
		case j := <-c.jobs:
			c.cache.abort(j.req.ID)
		default:
			return
		}
	}
}

// observe reports an outcome decided in dispatch without blocking it.
func (c *commander) observe(r CommandRecord) {
	if c.o.Observer == nil || r.ID == "" {
		return
	}
	select {
	case c.obs <- r:
	default:
		c.s.log.Warn("command outcome not recorded: the observer is behind", "command", r.Name, "id", r.ID, "code", r.Code)
	}
}

// observed reports an outcome decided in a worker, waiting for room.
func (c *commander) observed(r CommandRecord) {
	if c.o.Observer == nil {
		return
	}
	c.obs <- r // the observer goroutine runs until the workers are done
}

// claimed is who a request says it is from, unverified.
func claimed(req wire.Request) string {
	switch {
	case req.Auth != nil:
		return req.Auth.Key + " (signature not checked)"
	case req.From != "":
		return "unverified: " + req.From
	}
	return "unverified: unknown"
}

func record(name string, req wire.Request, received time.Time, rerr *wire.ReplyError) CommandRecord {
	r := CommandRecord{Name: name, ID: req.ID, Requester: claimed(req), Args: req.Args, Received: received, OK: rerr == nil}
	if rerr != nil {
		r.Code, r.Message = rerr.Code, rerr.Message
	}
	return r
}

func (c *commander) reply(id string, r wire.Reply) []byte {
	if id == "" {
		id = wire.InvalidID
	}
	r.Header = wire.NewHeader(c.s.clk.Now())
	r.ID = id
	return mustJSON(r)
}

// fail answers a request refused in dispatch, and reports the outcome.
func (c *commander) fail(name string, req wire.Request, received time.Time, code, format string, args ...any) {
	rerr := &wire.ReplyError{Code: code, Message: fmt.Sprintf(format, args...)}
	c.answer(req.ID, c.reply(req.ID, wire.Reply{Error: rerr}))
	c.observe(record(name, req, received, rerr))
}

// answer queues a reply decided in dispatch without blocking the MQTT
// client; when the queue is full the reply is dropped and the requester's
// retry (same id) is answered instead.
func (c *commander) answer(id string, payload []byte) {
	if id == "" {
		id = wire.InvalidID
	}
	select {
	case c.quick <- quickReply{id: id, payload: payload}:
	default:
		c.s.cmdDropped.Add(1)
		c.s.log.Warn("reply queue full; reply dropped", "id", id)
	}
}

// dispatch handles one request payload on the MQTT client's goroutine. It
// never blocks.
//
// The gate runs in the worker, not here: admitting a signed request writes
// and syncs the replay state, which can take tens of milliseconds on an SD
// card, and this goroutine also reads the broker's keep-alives. The dedupe
// cache still sees the request first, so a repeat of an admitted request
// is answered from its first reply and never reaches the gate (where it
// would be refused as a replay); a refused request is forgotten by the
// cache, so a genuine request with that id can run later.
func (c *commander) dispatch(name string, payload []byte) {
	now := c.s.clk.Now()
	if len(payload) > c.o.MaxBytes {
		c.fail(name, wire.Request{ID: wire.ScanRequestID(payload)}, now, wire.CodeTooLarge, "the request is %d bytes; the unit accepts at most %d", len(payload), c.o.MaxBytes)
		return
	}
	wreq, rerr := wire.DecodeRequest(payload)
	if rerr != nil {
		c.s.log.Debug("bad request", "command", name, "err", rerr)
		c.answer(wreq.ID, c.reply(wreq.ID, wire.Reply{Error: rerr}))
		c.observe(record(name, wreq, now, rerr))
		return
	}
	switch cached, state := c.cache.lookup(wreq.ID, now); state {
	case entryDone:
		c.s.cmdDups.Add(1)
		c.answer(wreq.ID, cached)
		return
	case entryRunning:
		c.s.cmdDups.Add(1) // answered when the first one finishes
		return
	}
	h := c.s.handler(name)
	if h == nil {
		c.fail(name, wreq, now, wire.CodeUnknownCommand, "this unit has no command %q", name)
		return
	}
	req := Request{Name: name, ID: wreq.ID, Args: wreq.Args, Requester: claimed(wreq)}
	if wreq.Deadline != nil {
		req.Deadline = *wreq.Deadline
		if !now.Before(req.Deadline) {
			c.fail(name, wreq, now, wire.CodeDeadlineExceeded, "the request arrived at %s, after its deadline %s", now.UTC().Format(time.RFC3339), req.Deadline.UTC().Format(time.RFC3339))
			return
		}
	}
	if !c.cache.begin(req.ID, now) {
		c.s.cmdDups.Add(1) // a copy arrived meanwhile and runs
		return
	}
	select {
	case c.jobs <- job{req: req, h: h, wreq: wreq, received: now}:
	default:
		c.cache.abort(req.ID)
		c.s.cmdBusy.Add(1)
		c.fail(name, wreq, now, wire.CodeBusy, "the unit is running %d commands and has %d waiting; retry with the same id", c.o.Workers, c.o.Queue)
	}
}

// admit asks the gate about j, turning a panic into a refusal.
func (c *commander) admit(j job) (requester string, rerr *wire.ReplyError) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("command gate panicked", "command", j.req.Name, "id", j.req.ID, "panic", p, "stack", string(debug.Stack()))
			rerr = &wire.ReplyError{Code: wire.CodeUnauthorized, Message: fmt.Sprintf("the unit could not check the request: %v", p)}
		}
	}()
	who, err := c.o.Gate.Admit(j.req.Name, j.wreq)
	if err == nil {
		return who, nil
	}
	code := wire.CodeUnauthorized
	var coded interface{ ReplyCode() string }
	if errors.As(err, &coded) && coded.ReplyCode() != "" {
		code = coded.ReplyCode()
	}
	return "", &wire.ReplyError{Code: code, Message: err.Error()}
}

// execute runs one handler and publishes (and keeps) its reply.
func (c *commander) execute(ctx context.Context, j job) {
	if c.o.Gate != nil {
		who, rerr := c.admit(j)
		if rerr != nil {
			c.s.log.Warn("command refused", "command", j.req.Name, "id", j.req.ID, "claimed", j.req.Requester, "code", rerr.Code, "reason", rerr.Message)
			// Forgotten, not kept: a genuine request of that id may
			// follow.
			c.cache.abort(j.req.ID)
			c.publish(ctx, j.req.ID, c.reply(j.req.ID, wire.Reply{Error: rerr}))
			rec := record(j.req.Name, j.wreq, j.received, rerr)
			c.observed(rec)
			return
		}
		j.req.Requester = who
	}
	timeout := c.o.Timeout
	if !j.req.Deadline.IsZero() {
		timeout = min(timeout, j.req.Deadline.Sub(c.s.clk.Now()))
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	result, err := c.call(hctx, j)
	expired := hctx.Err() == context.DeadlineExceeded
	cancel()

	var r wire.Reply
	switch {
	case err == nil:
		r.OK = true
		if result != nil {
			b, merr := json.Marshal(result)
			if merr != nil {
				r.OK = false
				r.Error = &wire.ReplyError{Code: wire.CodeInternal, Message: "encoding the result: " + merr.Error()}
				break
			}
			r.Result = b
		}
	default:
		r.Error = replyError(err, expired, ctx.Err() != nil)
	}
	payload := c.reply(j.req.ID, r)
	c.cache.finish(j.req.ID, payload, c.s.clk.Now())
	c.publish(ctx, j.req.ID, payload)
	if a, ok := result.(AfterReply); ok {
		a.Replied()
	}
	rec := record(j.req.Name, j.wreq, j.received, r.Error)
	rec.Requester = j.req.Requester
	c.observed(rec)
}

// AfterReply is a handler's result that is told when its reply has been
// published (or could not be): a command that restarts the unit's
// components waits for it, so that its reply is not lost in the restart.
type AfterReply interface {
	Replied()
}

// call runs the handler, turning a panic into an error.
func (c *commander) call(ctx context.Context, j job) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("command panicked", "command", j.req.Name, "id", j.req.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("the command failed unexpectedly: %v", p)
		}
	}()
	return j.h(ctx, j.req)
}

func replyError(err error, expired, stopping bool) *wire.ReplyError {
	var ce CommandError
	var cep *CommandError
	var re *wire.ReplyError
	switch {
	case errors.As(err, &ce) && ce.Code != "":
		return &wire.ReplyError{Code: ce.Code, Message: ce.Message}
	case errors.As(err, &cep) && cep != nil && cep.Code != "":
		return &wire.ReplyError{Code: cep.Code, Message: cep.Message}
	case errors.As(err, &re) && re != nil && re.Code != "":
		return &wire.ReplyError{Code: re.Code, Message: re.Message}
	case expired || errors.Is(err, context.DeadlineExceeded):
		return &wire.ReplyError{Code: wire.CodeDeadlineExceeded, Message: "the command did not finish before its deadline: " + err.Error()}
	case stopping:
		return &wire.ReplyError{Code: wire.CodeUnavailable, Message: "the agent is stopping; retry with the same id: " + err.Error()}
	}
	return &wire.ReplyError{Code: wire.CodeInternal, Message: err.Error()}
}

// publish sends a reply live. A reply lost to the link is not kept: the
// control room retries with the same id and is answered from the cache.
func (c *commander) publish(ctx context.Context, id string, payload []byte) {
	pctx, cancel := context.WithTimeout(ctx, c.s.opts.WriteTimeout)
	defer cancel()
	if err := c.s.Publish(pctx, c.s.opts.Topics.Reply(id), 1, false, payload); err != nil {
		c.s.log.Debug("reply not published; the control room will retry", "id", id, "err", err)
	}
}
