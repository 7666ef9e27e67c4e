package mask

import (
	"image"
	"reflect"
	"strings"
	"testing"
)

func TestNewRejects(t *testing.T) {
	tri := []image.Point{{0, 0}, {10, 0}, {0, 10}}
	tests := []struct {
		name  string
		w, h  int
		rects []Rect
		polys [][]image.Point
		want  string
	}{
		{"zero size", 0, 10, nil, nil, "width and height must be 1 to"},
		{"huge", MaxSide + 1, 10, nil, nil, "width and height must be 1 to"},
		{"empty rect", 100, 100, []Rect{{1, 1, 0, 5}}, nil, "must be positive"},
		{"rect outside", 100, 100, []Rect{{100, 0, 5, 5}}, nil, "lies outside"},
		{"rect left of frame", 100, 100, []Rect{{-10, 0, 10, 5}}, nil, "lies outside"},
		{"two vertices", 100, 100, nil, [][]image.Point{{{0, 0}, {5, 5}}}, "at least 3"},
		{"line polygon", 100, 100, nil, [][]image.Point{{{0, 5}, {5, 5}, {10, 5}}}, "no area"},
		{"polygon outside", 100, 100, nil, [][]image.Point{{{200, 200}, {210, 200}, {200, 210}}}, "lies outside"},
		{"ok", 100, 100, []Rect{{-5, -5, 10, 10}}, [][]image.Point{tri}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.w, tt.h, tt.rects, tt.polys)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSnapped(t *testing.T) {
	g420 := Geometry{Width: 100, Height: 50, MCUWidth: 16, MCUHeight: 16}
	tests := []struct {
		name  string
		rects []Rect
		polys [][]image.Point
		g     Geometry
		want  []Rect
	}{
		{"outward", []Rect{{10, 10, 20, 20}}, nil, g420, []Rect{{0, 0, 32, 32}}},
		{"aligned", []Rect{{16, 16, 16, 16}}, nil, g420, []Rect{{16, 16, 16, 16}}},
		{"clipped at the frame edge", []Rect{{90, 40, 50, 50}}, nil, g420, []Rect{{80, 32, 20, 18}}},
		{"whole frame", []Rect{{0, 0, 100, 50}}, nil, g420, []Rect{{0, 0, 100, 50}}},
		{"8x8 MCU", []Rect{{9, 0, 1, 1}}, nil, Geometry{Width: 100, Height: 50, MCUWidth: 8, MCUHeight: 8}, []Rect{{8, 0, 8, 8}}},
		{"4:2:2 MCU", []Rect{{17, 9, 1, 1}}, nil, Geometry{Width: 100, Height: 50, MCUWidth: 16, MCUHeight: 8}, []Rect{{16, 8, 16, 8}}},
		// A square polygon on MCU borders covers those MCUs only, not
		// the ones its edges touch.
		{"polygon on borders", nil, [][]image.Point{{{16, 16}, {48, 16}, {48, 32}, {16, 32}}}, g420, []Rect{{16, 16, 32, 16}}},
		// A thin diagonal: every MCU it crosses, even without covering
		// an MCU's centre.
		{"thin diagonal", nil, [][]image.Point{{{0, 0}, {1, 0}, {48, 47}, {47, 47}}}, g420,
			[]Rect{{0, 0, 32, 16}, {16, 16, 32, 16}, {32, 32, 16, 16}}},
		{"triangle", nil, [][]image.Point{{{0, 0}, {64, 0}, {0, 48}}}, g420,
			[]Rect{{0, 0, 64, 16}, {0, 16, 48, 16}, {0, 32, 32, 16}}},
		{"empty", nil, nil, g420, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.g.Width, tt.g.Height, tt.rects, tt.polys)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Snapped(tt.g); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Snapped = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSnappedMergesRows(t *testing.T) {
	m, err := New(64, 64, []Rect{{0, 0, 20, 40}, {40, 0, 10, 10}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Snapped(Geometry{Width: 64, Height: 64, MCUWidth: 8, MCUHeight: 8})
	want := []Rect{{0, 0, 24, 40}, {40, 0, 16, 16}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapped = %v, want %v", got, want)
	}
}

// A mask configured for one frame size covers the same part of a frame
// of another size.
func TestMaskScalesToFrameSize(t *testing.T) {
	m, err := New(640, 360, []Rect{{320, 180, 320, 180}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Snapped(Geometry{Width: 320, Height: 180, MCUWidth: 16, MCUHeight: 16})
	want := []Rect{{160, 80, 160, 100}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapped = %v, want %v", got, want)
	}
	got = m.Snapped(Geometry{Width: 1280, Height: 720, MCUWidth: 16, MCUHeight: 8})
	want = []Rect{{640, 360, 640, 360}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapped = %v, want %v", got, want)
	}
}
