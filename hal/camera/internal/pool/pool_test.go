package pool

import "testing"

func TestPool(t *testing.T) {
	p := New(2, 1<<20)
	a := p.Get(100)
	if len(a) != 0 || cap(a) < 100 {
		t.Fatalf("Get(100) = len %d cap %d", len(a), cap(a))
	}
	a = append(a, 1, 2, 3)
	p.Put(a)
	b := p.Get(50)
	if cap(b) != cap(a) || len(b) != 0 || &b[:1][0] != &a[0] {
		t.Fatal("Get did not reuse the buffer handed back")
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d after taking the only buffer", p.Len())
	}

	// Too large to keep.
	p.Put(make([]byte, 0, 2<<20))
	if p.Len() != 0 {
		t.Fatal("kept a buffer over the cap")
	}
	// Full: a larger buffer replaces the smallest, a smaller one is dropped.
	p.Put(make([]byte, 0, 10))
	p.Put(make([]byte, 0, 20))
	p.Put(make([]byte, 0, 30))
	p.Put(make([]byte, 0, 5))
	if p.Len() != 2 {
		t.Fatalf("Len = %d, want 2", p.Len())
	}
	if c := cap(p.Get(25)); c != 30 {
		t.Fatalf("Get(25) from {20, 30} gave cap %d, want 30", c)
	}
	if c := cap(p.Get(25)); c < 25 || c == 20 {
		t.Fatalf("Get(25) with only a 20-byte buffer kept gave cap %d, want a new buffer", c)
	}
}

func TestPoolSteadyStateAllocatesNothing(t *testing.T) {
	p := New(4, 1<<20)
	p.Put(p.Get(200 << 10))
	allocs := testing.AllocsPerRun(100, func() {
		b := p.Get(190 << 10)
		p.Put(b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Get/Put cycle, want 0", allocs)
	}
}
