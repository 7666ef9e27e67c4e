package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApplyMergePatch(t *testing.T) {
	c := Default()
	c.Unit.ID = "lamp-14"
	c.Uplink.Username, c.Uplink.Password = "lamp-14", "hunter2"
	c.Camera.Username, c.Camera.Password = "admin", "cam-secret"
	c.Telemetry.Signal.Interval = Duration(2 * time.Minute)

	got, err := c.Apply("v7", json.RawMessage(`{"telemetry":{"power":{"interval":"5m"},"signal":{"interval":null}},"uplink":{"password":"[redacted]","outbox_size":1048576}}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Telemetry.Power.Interval.D() != 5*time.Minute {
		t.Errorf("power interval %v", got.Telemetry.Power.Interval)
	}
	if got.Telemetry.Signal.Interval != Default().Telemetry.Signal.Interval {
		t.Errorf("null did not restore the default: %v", got.Telemetry.Signal.Interval)
	}
	if got.Uplink.Password != "hunter2" || got.Camera.Password != "cam-secret" {
		t.Errorf("secrets not kept: %q %q", got.Uplink.Password, got.Camera.Password)
	}
	if got.Uplink.OutboxSize != 1<<20 || got.Unit.ID != "lamp-14" {
		t.Errorf("outbox %d, id %q", got.Uplink.OutboxSize, got.Unit.ID)
	}
	ch, err := Changes(c, got)
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for _, x := range ch {
		words = append(words, x.String())
	}
	want := []string{"telemetry.power.interval: 1m → 5m", "telemetry.signal.interval: 2m → 1m", "uplink.outbox_size: 16MiB → 1MiB"}
	if strings.Join(words, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(words, "\n"), strings.Join(want, "\n"))
	}
	if !TouchesLink(ch) || Live(ch) {
		t.Errorf("outbox_size change: link %v live %v", TouchesLink(ch), Live(ch))
	}
	if TouchesLink(ch[:2]) || !Live(ch[:2]) {
		t.Errorf("telemetry change: link %v live %v", TouchesLink(ch[:2]), Live(ch[:2]))
	}
}

func TestApplyFullUsesDefaults(t *testing.T) {
	c := Default()
	c.Unit.ID = "lamp-14"
	c.Recording.Mode = "events"
	got, err := c.Apply("v2", json.RawMessage(`{"unit":{"id":"lamp-14"},"telemetry":{"power":{"interval":"30s"}}}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Recording.Mode != "continuous" || got.Telemetry.Power.Interval.D() != 30*time.Second {
		t.Errorf("mode %q interval %v", got.Recording.Mode, got.Telemetry.Power.Interval)
	}
}

func TestApplyRejectsEveryProblem(t *testing.T) {
	c := Default()
	_, err := c.Apply("config/desired v3", json.RawMessage(`{"telemetry":{"powr":{"interval":"5m"},"signal":{"interval":"0s"}},"camera":{"fps":"fast"}}`), false)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`config/desired v3: telemetry.powr: unknown key (did you mean "power"?)`,
		"config/desired v3: telemetry.signal.interval:",
		"config/desired v3: camera.fps:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "v3:1") || strings.Contains(msg, "v3:2") {
		t.Errorf("error carries lines of a file the sender never wrote:\n%s", msg)
	}
	for _, bad := range []string{`[1,2]`, `"x"`, `{`, `null`} {
		if _, err := c.Apply("d", json.RawMessage(bad), false); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFixedFields(t *testing.T) {
	a := Default()
	b := a
	b.Unit.ID = "other"
	b.DataDir = "/tmp/x"
	es := Fixed(a, b)
	if len(es) != 2 || es[0].Field != "unit.id" || es[1].Field != "data_dir" {
		t.Fatalf("%v", es)
	}
}

func TestRedactedCoversEverySecret(t *testing.T) {
	c := Default()
	c.Uplink.Username, c.Uplink.Password = "u", "a"
	c.Camera.Username, c.Camera.Password = "v", "b"
	b, _, err := c.Report()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"a"`) || strings.Contains(string(b), `"b"`) {
		t.Fatalf("a secret is in the report: %s", b)
	}
	if got := SecretFields(); strings.Join(got, ",") != "camera.password,uplink.password" {
		t.Errorf("secret fields %v", got)
	}
	ch, _ := Changes(Default(), c)
	for _, x := range ch {
		if strings.HasSuffix(x.Field, "password") && (x.New != RedactedValue || x.String() != x.Field+": set to [redacted]") {
			t.Errorf("change %v: %s", x, x)
		}
	}
}

func TestMarshalReadsBack(t *testing.T) {
	c := Default()
	c.Unit.ID = "lamp-14"
	c.Uplink.Username, c.Uplink.Password = "lamp-14", "hunter2"
	b, err := c.Marshal("written by the agent\nversion 3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# written by the agent\n# version 3\n") {
		t.Errorf("header: %.60s", b)
	}
	got, err := Parse("f", b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("read back differs")
	}
}
