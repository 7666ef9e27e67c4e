package agent

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"sync"

	"github.com/outpost-cctv/outpost/hal/camera"
	"github.com/outpost-cctv/outpost/uplink"
	"github.com/outpost-cctv/outpost/uplink/wire"
)

// faultInjector makes the simulated camera fail the ways real ones do, on
// command (sim.camera), so that the fault detectors can be seen working on
// a demo: frozen (the last picture repeated, as a camera stuck on one
// buffer), black (a covered lens, an IR illuminator failed at night), or
// none.
type faultInjector struct {
	mu    sync.Mutex
	fault string
	last  []byte
	black map[image.Point][]byte
}

// Simulated camera faults.
const (
	SimFaultNone   = "none"
	SimFaultFrozen = "frozen"
	SimFaultBlack  = "black"
)

// SimCameraArgs are the arguments of the sim.camera command.
type SimCameraArgs struct {
	Fault string `json:"fault"`
}

func (fi *faultInjector) handle(_ context.Context, req uplink.Request) (any, error) {
	var a SimCameraArgs
	if err := req.DecodeArgs(&a); err != nil {
		return nil, err
	}
	switch a.Fault {
	case SimFaultNone, SimFaultFrozen, SimFaultBlack:
	default:
		return nil, uplink.CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf("fault %q: use none, frozen or black", a.Fault)}
	}
	fi.mu.Lock()
	fi.fault = a.Fault
	fi.mu.Unlock()
	return map[string]string{"fault": a.Fault}, nil
}

func (fi *faultInjector) wrap(open func(context.Context) (camera.Source, error)) func(context.Context) (camera.Source, error) {
	return func(ctx context.Context) (camera.Source, error) {
		src, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return &faultySource{Source: src, fi: fi}, nil
	}
}

type faultySource struct {
	camera.Source
	fi *faultInjector
}

func (s *faultySource) Next(ctx context.Context) (camera.Frame, error) {
	f, err := s.Source.Next(ctx)
	if err != nil {
		return f, err
	}
	fi := s.fi
	fi.mu.Lock()
	defer fi.mu.Unlock()
	switch fi.fault {
	case SimFaultFrozen:
		if fi.last == nil {
			fi.last = f.Data // frozen before the first frame: on the first
		}
		f.Data = fi.last
	case SimFaultBlack:
		f.Data = fi.blackFrame(f.Width, f.Height)
	default:
		fi.last = f.Data
	}
	return f, nil
}

// blackFrame is a black JPEG of the given size (fi.mu held).
func (fi *faultInjector) blackFrame(w, h int) []byte {
	key := image.Pt(w, h)
	if b, ok := fi.black[key]; ok {
		return b
	}
	var buf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, w, h)) // all zero: black
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
		return nil
	}
	if fi.black == nil {
		fi.black = map[image.Point][]byte{}
	}
	fi.black[key] = buf.Bytes()
	return fi.black[key]
}
