package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost-cctv/outpost/agent/config"
)

func TestTriggers(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, c := range []struct {
		mode string
		run  func(tr *triggers)
		want string
	}{
		{config.TriggerMotion, func(tr *triggers) { tr.motionStart(at(0)); tr.pirActive(at(1)) }, "motion@0"},
		{config.TriggerPIR, func(tr *triggers) { tr.motionStart(at(0)); tr.pirActive(at(1)) }, "pir@1"},
		{config.TriggerMotionOrPIR, func(tr *triggers) { tr.motionStart(at(0)); tr.pirActive(at(1)) }, "motion@0 pir@1"},
		// Confirmed by a PIR before the motion, or after it, within 5 s.
		{config.TriggerMotionAndPIR, func(tr *triggers) { tr.pirActive(at(0)); tr.motionStart(at(3)) }, "motion@3 confirmed"},
		{config.TriggerMotionAndPIR, func(tr *triggers) { tr.motionStart(at(0)); tr.pirActive(at(4)) }, "motion@0 confirmed"},
		// A shadow: motion without the PIR; a cat: the PIR without motion.
		{config.TriggerMotionAndPIR, func(tr *triggers) { tr.motionStart(at(0)); tr.pirActive(at(9)) }, ""},
		{config.TriggerMotionAndPIR, func(tr *triggers) { tr.pirActive(at(0)); tr.motionStart(at(20)) }, ""},
	} {
		var got []string
		tr := newTriggers(config.Motion{Trigger: c.mode, PIRWindow: config.Duration(5 * time.Second)}, func(kind string, a time.Time) {
			got = append(got, kind+"@"+a.Sub(t0).String()[:1])
		})
		tr.onConfirm = func(time.Time) {}
		c.run(tr)
		if tr.motionCounted(tr.confirmed) && c.mode == config.TriggerMotionAndPIR && !tr.confirmed.IsZero() {
			got = append(got, "confirmed")
		}
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("%s: %q, want %q", c.mode, s, c.want)
		}
	}
}
