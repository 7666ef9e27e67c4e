package ota

// The suffix array of the base binary, which the delta encoder searches for
// the longest match of each position of the new binary. It is built by
// induced sorting (SA-IS, Nong, Zhang and Chan, 2009) in linear time: a
// 12 MB binary sorts in about a second, where the sort of the original
// bsdiff (Larsson and Sadakane) takes O(n log n). The text is taken as if
// followed by a sentinel smaller than every symbol, which is never stored.
// Only the control room builds deltas: a unit never runs this code.

// suffixArray returns the start of every suffix of text in lexical order.
// Texts of 2 GiB or more are refused by the caller (int32 positions).
func suffixArray(text []byte) []int32 {
	sa := make([]int32, len(text))
	sais(text, sa, 256)
	return sa
}

// sais sorts the suffixes of t, whose symbols are below k, into sa
// (len(sa) == len(t)).
func sais[T byte | int32](t []T, sa []int32, k int) {
	n := len(t)
	switch n {
	case 0:
		return
	case 1:
		sa[0] = 0
		return
	}
	// isS[i]: suffix i is smaller than suffix i+1 (S-type), else L-type.
	// The last suffix is L-type: it is larger than the empty sentinel.
	isS := make([]bool, n)
	for i := n - 2; i >= 0; i-- {
		isS[i] = t[i] < t[i+1] || (t[i] == t[i+1] && isS[i+1])
	}
	isLMS := func(i int) bool { return i > 0 && isS[i] && !isS[i-1] }

	counts := make([]int32, k)
	for _, c := range t {
		counts[c]++
	}
	bkt := make([]int32, k)
	heads := func() {
		var s int32
		for c, m := range counts {
			bkt[c] = s
			s += m
		}
	}
	tails := func() {
		var s int32
		for c, m := range counts {
			s += m
			bkt[c] = s
		}
	}
	induce := func() {
		// L-type suffixes, left to right, from the heads of their
		// buckets; the suffix after the sentinel comes first.
		heads()
		c := t[n-1]
		sa[bkt[c]] = int32(n - 1)
		bkt[c]++
		for i := 0; i < n; i++ {
			j := sa[i] - 1
			if j >= 0 && !isS[j] {
				c := t[j]
				sa[bkt[c]] = j
				bkt[c]++
			}
		}
		// S-type suffixes, right to left, from the tails.
		tails()
		for i := n - 1; i >= 0; i-- {
			j := sa[i] - 1
			if j >= 0 && isS[j] {
				c := t[j]
				bkt[c]--
				sa[bkt[c]] = j
			}
		}
	}

	// 1. Sort the LMS substrings: LMS positions at their buckets' tails,
	// then one induction pass.
	for i := range sa {
		sa[i] = -1
	}
	tails()
	m := 0
	for i := n - 1; i >= 1; i-- {
		if isLMS(i) {
			c := t[i]
			bkt[c]--
			sa[bkt[c]] = int32(i)
			m++
		}
	}
	induce()
	if m == 0 {
		// No S-type suffix at all (a non-increasing text): induction
		// from the last suffix alone sorted everything.
		return
	}

	// 2. Name the sorted LMS substrings; equal substrings share a name.
	j := 0
	for i := 0; i < n; i++ {
		if p := int(sa[i]); isLMS(p) {
			sa[j] = int32(p)
			j++
		}
	}
	// Positions of LMS suffixes are at least 2 apart, so p/2 is a free
	// slot in sa[m:], which has n-m >= n/2 entries.
	for i := m; i < n; i++ {
		sa[i] = -1
	}
	names := 0
	prev := -1
	for i := 0; i < m; i++ {
		p := int(sa[i])
		if prev < 0 || !equalLMS(t, isS, isLMS, prev, p) {
			names++
		}
		prev = p
		sa[m+p/2] = int32(names - 1)
	}
	// Gather the names in text order at the end of sa: the reduced text.
	j = n - 1
	for i := n - 1; i >= m; i-- {
		if sa[i] >= 0 {
			sa[j] = sa[i]
			j--
		}
	}
	reduced := sa[n-m:]
	sorted := sa[:m]

	// 3. Sort the reduced text (recursively when names repeat).
	if names < m {
		sais(reduced, sorted, names)
	} else {
		for i, c := range reduced {
			sorted[c] = int32(i)
		}
	}

	// 4. Map back to LMS positions, place them at their buckets' tails
	// in sorted order and induce the whole array.
	j = 0
	for i := 1; i < n; i++ {
		if isLMS(i) {
			reduced[j] = int32(i)
			j++
		}
	}
	for i := range sorted {
		sorted[i] = reduced[sorted[i]]
	}
	for i := m; i < n; i++ {
		sa[i] = -1
	}
	tails()
	for i := m - 1; i >= 0; i-- {
		p := sa[i]
		sa[i] = -1
		c := t[p]
		bkt[c]--
		sa[bkt[c]] = p
	}
	induce()
}

// equalLMS reports whether the LMS substrings at a and b (each running to
// the next LMS position, inclusive) are equal in symbols and types. One that
// reaches the end of the text holds the sentinel and equals no other.
func equalLMS[T byte | int32](t []T, isS []bool, isLMS func(int) bool, a, b int) bool {
	n := len(t)
	for d := 0; ; d++ {
		if a+d >= n || b+d >= n {
			return false
		}
		if t[a+d] != t[b+d] || isS[a+d] != isS[b+d] {
			return false
		}
		if d > 0 {
			la, lb := isLMS(a+d), isLMS(b+d)
			if la || lb {
				return la && lb
			}
		}
	}
}
