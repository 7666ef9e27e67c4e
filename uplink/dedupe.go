package uplink

import (
	"container/list"
	"sync"
	"time"
)

// Entry states of the dedupe cache.
const (
	entryNone = iota
	entryRunning
	entryDone
)

// dedupe remembers requests by id so that a repeat (a QoS 1 redelivery, a
// retry after a lost reply) is never executed twice: a repeat of a running
// request is ignored (the first one's reply answers both), a repeat of a
// finished one is answered with the first reply. Finished entries are kept
// for at most ttl and at most max of them, least recently used first out;
// running ones are bounded by the workers and the queue.
type dedupe struct {
	max int
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]*dedupeEntry
	done    *list.List // of *dedupeEntry, least recently used first
}

type dedupeEntry struct {
	id    string
	reply []byte // nil while running
	at    time.Time
	elem  *list.Element
}

func newDedupe(max int, ttl time.Duration) *dedupe {
	return &dedupe{max: max, ttl: ttl, entries: map[string]*dedupeEntry{}, done: list.New()}
}

// expire drops finished entries older than the ttl. d.mu is held.
func (d *dedupe) expire(now time.Time) {
	for e := d.done.Front(); e != nil; e = d.done.Front() {
		de := e.Value.(*dedupeEntry)
		if now.Sub(de.at) < d.ttl {
			// Entries are ordered by use, not age: an old entry behind a
			// recent one waits for its turn, or for the size bound.
			return
		}
		d.done.Remove(e)
		delete(d.entries, de.id)
	}
}

// lookup reports the state of id and, when done, its reply.
func (d *dedupe) lookup(id string, now time.Time) ([]byte, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	de, ok := d.entries[id]
	switch {
	case !ok:
		return nil, entryNone
	case de.reply == nil:
		return nil, entryRunning
	}
	if now.Sub(de.at) >= d.ttl {
		d.done.Remove(de.elem)
		delete(d.entries, id)
		return nil, entryNone
	}
	d.done.MoveToBack(de.elem)
	return de.reply, entryDone
}

// begin records id as running; false if it is known already.
func (d *dedupe) begin(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[id]; ok {
		return false
	}
	d.entries[id] = &dedupeEntry{id: id, at: now}
	return true
}

// abort forgets a running id that was not run (queue full, shutdown).
func (d *dedupe) abort(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if de, ok := d.entries[id]; ok && de.reply == nil {
		delete(d.entries, id)
	}
}

// finish keeps the reply of id.
func (d *dedupe) finish(id string, reply []byte, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	de, ok := d.entries[id]
	if !ok {
		de = &dedupeEntry{id: id}
		d.entries[id] = de
	}
	de.reply, de.at = reply, now
	if de.elem == nil {
		de.elem = d.done.PushBack(de)
	} else {
		d.done.MoveToBack(de.elem)
	}
	for d.done.Len() > d.max {
		old := d.done.Remove(d.done.Front()).(*dedupeEntry)
		delete(d.entries, old.id)
	}
	d.expire(now)
}

// len is the number of entries, for tests.
func (d *dedupe) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}
