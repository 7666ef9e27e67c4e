package mjpeg

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed files in testdata/seeds")

// seedStreams are the fuzz seeds: small streams of every kind the readers
// meet, kept in testdata/seeds so the fuzzers start from them.
func seedStreams(t testing.TB) map[string][]byte {
	a, b := testJPEG(t, 16, 16, 1), testJPEG(t, 16, 8, 2)
	return map[string][]byte{
		"raw.mjpeg":               concat(a, b),
		"raw-garbage.mjpeg":       concat([]byte("junk\r\n"), a, []byte{0, 0xFF, 0x12}, b),
		"raw-truncated.mjpeg":     concat(a[:len(a)/2], b),
		"multipart-length.txt":    multipart("ffmpeg", true, a, b),
		"multipart-nolength.txt":  multipart("ffmpeg", false, a, b),
		"multipart-html-part.txt": concat([]byte("--b\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>\r\n"), multipart("b", true, a)),
		"html.txt":                []byte("<!DOCTYPE html>\n<html><title>Camera login</title></html>\n"),
		"no-huffman.jpg":          withoutHuffman(t, a),
		"thumbnail.jpg":           withThumbnail(t, a),
		"multiscan.jpg":           multiScan(),
	}
}

// seeds reads the seed files.
func seeds(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "seeds", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fuzz seeds in testdata/seeds (%v): run go test -run TestSeedFiles -update", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestSeedFiles checks every seed is present; with -update it writes them.
func TestSeedFiles(t *testing.T) {
	dir := filepath.Join("testdata", "seeds")
	for name, b := range seedStreams(t) {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("seed %s missing or empty (%v): run go test -run TestSeedFiles -update", path, err)
		}
	}
}
