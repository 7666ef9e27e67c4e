package agent

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/outpost-cctv/outpost/agent/config"
	"github.com/outpost-cctv/outpost/footage/scene"
	"github.com/outpost-cctv/outpost/hal/camera"
)

// SceneReferenceFile is where, under the data directory, the scene
// reference taken by outpost check is kept.
const SceneReferenceFile = "scene/reference"

// SceneReference makes the scene reference of a frame, in its file format.
func SceneReference(f camera.Frame) ([]byte, error) {
	a, err := scene.New(scene.DefaultConfig())
	if err != nil {
		return nil, err
	}
	ref, err := a.CommissionJPEG(f.Time, f.Data)
	if err != nil {
		return nil, err
	}
	return ref.Marshal()
}

// loadReference reads the scene reference; without one (the unit was not
// commissioned with outpost check) the view and focus are not judged.
func loadReference(dataDir string, log *slog.Logger) scene.Reference {
	b, err := os.ReadFile(filepath.Join(dataDir, SceneReferenceFile))
	if errors.Is(err, os.ErrNotExist) {
		return scene.Reference{}
	}
	if err == nil {
		var ref scene.Reference
		if ref, err = scene.UnmarshalReference(b); err == nil {
			return ref
		}
	}
	log.Warn("the scene reference is unreadable: the view and focus are not checked until outpost check takes a new one", "err", err)
	return scene.Reference{}
}

// sceneConfig sets the picture checks from the fault thresholds.
func sceneConfig(f config.Faults) scene.Config {
	c := scene.DefaultConfig()
	c.FrozenHold, c.BlankHold = f.CameraFrozen.D(), f.CameraBlack.D()
	c.SceneHold, c.FocusHold = f.SceneChanged.D(), f.SceneChanged.D()
	return c
}

// pictureKinds maps the picture checks' kinds to fault kinds.
var pictureKinds = map[string]string{
	scene.KindFrozen: FaultCameraFrozen, scene.KindBlank: FaultCameraBlack,
	scene.KindSceneChanged: FaultSceneChanged, scene.KindOutOfFocus: FaultOutOfFocus,
}

// pictureConditions turns the sink's conditions into the monitor's.
func pictureConditions(s *scene.Sink) func() []PictureCondition {
	return func() []PictureCondition {
		var out []PictureCondition
		for _, c := range s.Conditions() {
			kind, ok := pictureKinds[c.Kind]
			if !ok {
				continue
			}
			score := c.Score
			if math.IsNaN(score) {
				score = 0
			}
			out = append(out, PictureCondition{Kind: kind, Active: c.Active, Message: "camera: " + c.Message, Action: c.Action, Score: score})
		}
		return out
	}
}
