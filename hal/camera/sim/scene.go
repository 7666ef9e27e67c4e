package sim

import (
	"image"
	"image/color"
)

// noiseVariants is how many noisy copies of the static scene are encoded;
// consecutive frames cycle through them so that no two neighbours are
// byte-identical, as with a real sensor.
const noiseVariants = 8

// maxMotionPositions bounds how many positions of the crossing object are
// encoded, whatever the frame rate and crossing time.
const maxMotionPositions = 50

// rgb is a colour of the scene, converted once to Y'CbCr.
type rgb struct{ r, g, b uint8 }

func (c rgb) ycc() (y, cb, cr uint8) { return color.RGBToYCbCr(c.r, c.g, c.b) }

// building is a block on the far side of the street, in fractions of the
// frame: x from left to right, top measured from the top of the frame.
type building struct {
	left, right, top float64
	wall, window     rgb
}

// streetBuildings are the blocks along the far side of the street.
func streetBuildings() []building {
	return []building{
		{0.00, 0.14, 0.12, rgb{132, 78, 62}, rgb{222, 210, 160}},
		{0.15, 0.31, 0.24, rgb{152, 150, 144}, rgb{70, 86, 104}},
		{0.32, 0.44, 0.06, rgb{96, 98, 110}, rgb{200, 206, 214}},
		{0.45, 0.62, 0.20, rgb{176, 160, 128}, rgb{64, 80, 96}},
		{0.63, 0.76, 0.30, rgb{120, 70, 58}, rgb{230, 214, 150}},
		{0.77, 1.00, 0.16, rgb{140, 140, 136}, rgb{76, 90, 110}},
	}
}

// Layout of the street, as fractions of the frame height.
const (
	horizonY  = 0.46 // foot of the buildings
	roadTopY  = 0.56
	roadLineY = 0.70
	roadBotY  = 0.86
)

// layout maps fractions of the full frame to pixels. Drawing always works
// in full-frame coordinates, whatever part of the frame is being rendered.
type layout struct{ w, h int }

func (l layout) x(f float64) int { return int(f*float64(l.w) + 0.5) }
func (l layout) y(f float64) int { return int(f*float64(l.h) + 0.5) }

func (l layout) rect(x0, y0, x1, y1 float64) image.Rectangle {
	return image.Rect(l.x(x0), l.y(y0), l.x(x1), l.y(y1))
}

// fillRect paints r, clipped to the image, in colour c on the luma plane and
// the half-resolution chroma planes of a 4:2:0 image. The image may be a
// band of the frame (its Rect need not start at the origin), as long as its
// Rect starts on even coordinates.
func fillRect(m *image.YCbCr, r image.Rectangle, c rgb) {
	r = r.Intersect(m.Rect)
	if r.Empty() {
		return
	}
	y, cb, cr := c.ycc()
	for py := r.Min.Y; py < r.Max.Y; py++ {
		off := m.YOffset(r.Min.X, py)
		row := m.Y[off : off+r.Dx()]
		for i := range row {
			row[i] = y
		}
	}
	cx0, cy0 := r.Min.X/2, r.Min.Y/2
	cx1, cy1 := (r.Max.X+1)/2, (r.Max.Y+1)/2
	for py := cy0; py < cy1; py++ {
		off := (py-m.Rect.Min.Y/2)*m.CStride + cx0 - m.Rect.Min.X/2
		cbRow := m.Cb[off : off+cx1-cx0]
		crRow := m.Cr[off : off+cx1-cx0]
		for i := range cbRow {
			cbRow[i] = cb
			crRow[i] = cr
		}
	}
}

// drawScene paints the street over the part of the frame m covers, with the
// van on the road, its rear at x, if van is set.
func drawScene(m *image.YCbCr, l layout, van bool, x int) {
	drawStreet(m, l)
	if van {
		drawVan(m, l, x)
	}
	drawLampPost(m, l)
}

// drawStreet paints the sky, the buildings with their windows, the
// pavements and the road.
func drawStreet(m *image.YCbCr, l layout) {
	var (
		skyTop      = rgb{62, 110, 180}
		skyHorizon  = rgb{186, 206, 228}
		farPavement = rgb{158, 156, 150}
		road        = rgb{68, 69, 74}
		roadLine    = rgb{225, 222, 210}
		kerb        = rgb{120, 118, 112}
		nearPave    = rgb{148, 146, 140}
	)

	// Sky: a vertical gradient down to the horizon.
	hy := l.y(horizonY)
	for py := max(m.Rect.Min.Y, 0); py < min(hy, m.Rect.Max.Y); py++ {
		t := float64(py) / float64(max(hy-1, 1))
		c := rgb{lerp8(skyTop.r, skyHorizon.r, t), lerp8(skyTop.g, skyHorizon.g, t), lerp8(skyTop.b, skyHorizon.b, t)}
		fillRect(m, image.Rect(0, py, l.w, py+1), c)
	}

	// Buildings with a grid of windows.
	for _, b := range streetBuildings() {
		fillRect(m, l.rect(b.left, b.top, b.right, horizonY), b.wall)
		bw, bh := b.right-b.left, horizonY-b.top
		cols, rows := max(int(bw/0.035), 1), max(int(bh/0.07), 1)
		for r := range rows {
			for c := range cols {
				x0 := b.left + bw*(float64(c)+0.25)/float64(cols)
				x1 := b.left + bw*(float64(c)+0.75)/float64(cols)
				y0 := b.top + bh*(float64(r)+0.2)/float64(rows)
				y1 := b.top + bh*(float64(r)+0.65)/float64(rows)
				fillRect(m, l.rect(x0, y0, x1, y1), b.window)
			}
		}
	}

	// Far pavement, road with a dashed centre line, kerb, near pavement.
	fillRect(m, l.rect(0, horizonY, 1, roadTopY), farPavement)
	fillRect(m, l.rect(0, roadTopY-0.01, 1, roadTopY), kerb)
	fillRect(m, l.rect(0, roadTopY, 1, roadBotY), road)
	for x := 0.02; x < 1; x += 0.12 {
		fillRect(m, l.rect(x, roadLineY-0.006, x+0.06, roadLineY+0.006), roadLine)
	}
	fillRect(m, l.rect(0, roadBotY, 1, roadBotY+0.015), kerb)
	fillRect(m, l.rect(0, roadBotY+0.015, 1, 1), nearPave)
	for x := 0.0; x < 1; x += 0.1 { // paving joints
		fillRect(m, l.rect(x, roadBotY+0.015, x+0.002, 1), kerb)
	}
}

// drawLampPost paints a lamp post on the near pavement, in front of the
// traffic, its arm reaching over the road.
func drawLampPost(m *image.YCbCr, l layout) {
	var (
		lampPole = rgb{48, 52, 58}
		lampHead = rgb{240, 232, 180}
	)
	fillRect(m, l.rect(0.80, 0.18, 0.808, 0.93), lampPole)
	fillRect(m, l.rect(0.73, 0.18, 0.808, 0.19), lampPole)
	fillRect(m, l.rect(0.725, 0.19, 0.755, 0.205), lampHead)
	fillRect(m, l.rect(0.795, 0.90, 0.813, 0.93), lampPole)
}

// Size and place of the van, as fractions of the frame.
const (
	vanWidth  = 0.26
	vanHeight = 0.22
	vanBottom = 0.80
)

// vanRows returns the rows [y0, y1) the van covers wherever it is.
func vanRows(l layout) (y0, y1 int) {
	bottom := l.y(vanBottom)
	return bottom - l.y(vanHeight), bottom
}

// drawVan paints a van on the road with its rear at x (pixels; the van may
// lie partly outside the frame), driving to the right.
func drawVan(m *image.YCbCr, l layout, x int) {
	var (
		body      = rgb{236, 236, 232}
		stripe    = rgb{200, 60, 40}
		glass     = rgb{38, 48, 62}
		tyre      = rgb{20, 20, 22}
		headlight = rgb{250, 244, 200}
		seam      = rgb{170, 170, 166}
	)
	top, bottom := vanRows(l)
	vw, vh := l.x(vanWidth), bottom-top
	px := func(f float64) int { return x + int(f*float64(vw)+0.5) }
	py := func(f float64) int { return top + int(f*float64(vh)+0.5) }

	fillRect(m, image.Rect(px(0), py(0), px(0.78), py(0.88)), body)         // load box
	fillRect(m, image.Rect(px(0.78), py(0.28), px(1), py(0.88)), body)      // cab
	fillRect(m, image.Rect(px(0.82), py(0.33), px(0.97), py(0.55)), glass)  // windscreen
	fillRect(m, image.Rect(px(0.45), py(0.08), px(0.455), py(0.84)), seam)  // sliding door
	fillRect(m, image.Rect(px(0), py(0.58), px(1), py(0.65)), stripe)       // livery
	fillRect(m, image.Rect(px(0.10), py(0.78), px(0.24), py(1)), tyre)      // rear wheel
	fillRect(m, image.Rect(px(0.76), py(0.78), px(0.90), py(1)), tyre)      // front wheel
	fillRect(m, image.Rect(px(0.97), py(0.70), px(1), py(0.78)), headlight) // headlight
}

// addNoise adds small luma noise, binomial, at most 2 levels either way, like
// a real sensor's. Each row's noise depends only on seed and the
// row's position in the frame, so the same row rendered twice (in a static
// frame and in a motion frame) is identical.
func addNoise(m *image.YCbCr, seed uint64) {
	w := m.Rect.Dx()
	for py := m.Rect.Min.Y; py < m.Rect.Max.Y; py++ {
		s := rowSeed(seed, py)
		off := m.YOffset(m.Rect.Min.X, py)
		row := m.Y[off : off+w]
		var bits uint64
		for i, v := range row {
			if i%16 == 0 { // 4 bits a pixel
				s ^= s >> 12 // xorshift64*
				s ^= s << 25
				s ^= s >> 27
				bits = s * 0x2545F4914F6CDD1D
			}
			n := int(bits&1) + int(bits>>1&1) - int(bits>>2&1) - int(bits>>3&1)
			bits >>= 4
			row[i] = uint8(min(max(int(v)+n, 0), 255))
		}
	}
}

// rowSeed derives a non-zero generator state for one row (splitmix64).
func rowSeed(seed uint64, y int) uint64 {
	z := seed*0x9E3779B97F4A7C15 + uint64(y)*0xD1B54A32D192ED03 + 0x632BE59BD9B4E019
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	z ^= z >> 31
	if z == 0 {
		z = 1
	}
	return z
}

func lerp8(a, b uint8, t float64) uint8 {
	return uint8(float64(a) + (float64(b)-float64(a))*t + 0.5)
}
