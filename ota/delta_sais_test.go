package ota

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveSuffixArray sorts the suffixes by comparing them: the reference.
func naiveSuffixArray(text []byte) []int32 {
	sa := make([]int32, len(text))
	for i := range sa {
		sa[i] = int32(i)
	}
	slices.SortFunc(sa, func(a, b int32) int { return bytes.Compare(text[a:], text[b:]) })
	return sa
}

func TestSuffixArray(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	texts := [][]byte{
		nil, {0}, {5}, {1, 1}, {2, 1}, {1, 2},
		[]byte("banana"), []byte("mississippi"), []byte("abracadabra"),
		bytes.Repeat([]byte{0}, 1000),
		bytes.Repeat([]byte("ab"), 500),
		bytes.Repeat([]byte("abcabd"), 300),
		fakeBinary(9, 20000),
	}
	for i := 0; i < 300; i++ {
		n := r.IntN(300)
		k := 1 + r.IntN(4)
		if i%5 == 0 {
			k = 256
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.IntN(k))
		}
		texts = append(texts, b)
	}
	for _, text := range texts {
		got, want := suffixArray(text), naiveSuffixArray(text)
		if !slices.Equal(got, want) {
			t.Fatalf("suffix array of %q:\n got %v\nwant %v", text[:min(len(text), 64)], got[:min(len(got), 32)], want[:min(len(want), 32)])
		}
	}
}
