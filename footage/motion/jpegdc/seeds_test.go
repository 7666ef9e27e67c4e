package jpegdc

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seeds in testdata")

// TestSeeds keeps the fuzz seed corpus in testdata: small frames of every
// kind the decoder handles. `go test -run Seeds -update` rewrites them.
func TestSeeds(t *testing.T) {
	rgb := scene(40, 24, 9)
	seeds := map[string]func() []byte{
		"std420.jpg":   func() []byte { return encodeStd(t, rgb, 75) },
		"nodht420.jpg": func() []byte { return withoutDHT(encodeStd(t, rgb, 75)) },
		"ff422.jpg":    func() []byte { return encodeFFmpeg(t, rgb, "yuvj422p") },
		"ff444.jpg":    func() []byte { return encodeFFmpeg(t, rgb, "yuvj444p") },
		"gray.jpg":     func() []byte { return encodeFFmpeg(t, rgb, "gray") },
		"restart.jpg": func() []byte {
			b, _ := dcOnlyJPEG(40, 24, 2, 1, true)
			return b
		},
		// A baseline frame relabelled SOF2: enough for the decoder to
		// refuse it as progressive.
		"progressive.jpg": func() []byte {
			b := encodeStd(t, rgb, 75)
			return bytes.Replace(b, []byte{0xFF, mSOF0}, []byte{0xFF, mSOF2}, 1)
		},
	}
	for name, gen := range seeds {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, gen(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: run go test -run Seeds -update", err)
		}
		if _, err := Decode(b); (err != nil) != (name == "progressive.jpg") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
