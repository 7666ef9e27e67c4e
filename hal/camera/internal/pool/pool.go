// Package pool keeps frame buffers for reuse, so that a camera whose
// receiver hands frames back allocates nothing per frame in steady state.
//
// A receiver that never hands frames back loses nothing but the reuse:
// Get then allocates, exactly once per frame.
package pool

import "sync"

// Pool is a bounded free list of byte buffers. It is safe for concurrent
// use. The zero value is not usable; call New.
type Pool struct {
	mu    sync.Mutex
	free  [][]byte
	limit int // most buffers kept
	max   int // largest capacity kept
}

// New returns a pool keeping at most limit buffers of at most max bytes.
func New(limit, max int) *Pool {
	return &Pool{free: make([][]byte, 0, limit), limit: limit, max: max}
}

// granule rounds buffer capacities up, so that frames of slightly
// different sizes share buffers.
const granule = 16 << 10

// Get returns an empty buffer with room for at least n bytes.
func (p *Pool) Get(n int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(b) >= n {
			last := len(p.free) - 1
			p.free[i] = p.free[last]
			p.free[last] = nil
			p.free = p.free[:last]
			p.mu.Unlock()
			return b[:0]
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, (n+granule-1)/granule*granule)
}

// Put hands b back for reuse. The caller must not touch b afterwards, nor
// hand the same buffer back twice. Buffers too large or too many are left
// to the garbage collector; if the pool is full, a smaller buffer makes
// way for a larger one.
func (p *Pool) Put(b []byte) {
	c := cap(b)
	if c == 0 || c > p.max {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < p.limit {
		p.free = append(p.free, b[:0])
		return
	}
	smallest := 0
	for i, f := range p.free {
		if cap(f) < cap(p.free[smallest]) {
			smallest = i
		}
	}
	if cap(p.free[smallest]) < c {
		p.free[smallest] = b[:0]
	}
}

// Len is the number of buffers kept.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}
