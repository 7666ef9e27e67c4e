package motion

import "testing"

func TestPolygonContains(t *testing.T) {
	tri := Polygon{{0, 0}, {1, 1}, {0, 1}} // the bottom-left half
	// An L: the left column and the bottom row of a 3×3 grid.
	ell := Polygon{{0, 0}, {1.0 / 3, 0}, {1.0 / 3, 2.0 / 3}, {1, 2.0 / 3}, {1, 1}, {0, 1}}
	for _, c := range []struct {
		p    Polygon
		x, y float64
		in   bool
	}{
		{tri, 0.2, 0.8, true}, {tri, 0.8, 0.2, false}, {tri, 0.5, 0.6, true}, {tri, 0.5, 0.4, false},
		{ell, 0.1, 0.1, true}, {ell, 0.5, 0.5, false}, {ell, 0.9, 0.9, true}, {ell, 0.9, 0.1, false},
		{Rect{0.2, 0.2, 0.4, 0.4}.Polygon(), 0.3, 0.3, true}, {Rect{0.2, 0.2, 0.4, 0.4}.Polygon(), 0.5, 0.3, false},
	} {
		if got := c.p.Contains(c.x, c.y); got != c.in {
			t.Errorf("%v Contains(%g, %g) = %v", c.p, c.x, c.y, got)
		}
	}
}

func TestPolygonValidate(t *testing.T) {
	for _, c := range []struct {
		p  Polygon
		ok bool
	}{
		{Polygon{{0, 0}, {1, 0}, {0, 1}}, true},
		{Polygon{{0, 0}, {1, 0}}, false},                // two corners
		{Polygon{{0, 0}, {1.2, 0}, {0, 1}}, false},      // outside the picture
		{Polygon{{0, 0}, {0.5, 0.5}, {1, 1}}, false},    // a line
		{Polygon{{0, 0}, {-0.1, 0.5}, {0.5, 1}}, false}, // negative
	} {
		if err := c.p.validate(); (err == nil) != c.ok {
			t.Errorf("%v: validate %v", c.p, err)
		}
	}
}
