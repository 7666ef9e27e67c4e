package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	c := Default()
	c.Uplink.Username = "lamp-14"
	c.Uplink.Password = "hunter2"
	b, hash, err := c.Report()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hunter2") {
		t.Fatal("the password is in the report")
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	up := m["uplink"].(map[string]any)
	if up["password"] != "[redacted]" || up["keepalive"] != "1m" || up["monthly_budget"] != "3GiB" {
		t.Errorf("uplink section %v", up)
	}
	if m["retention"].(map[string]any)["quota"] != "90%" {
		t.Errorf("retention %v", m["retention"])
	}
	if len(hash) != 16 {
		t.Fatalf("hash %q", hash)
	}
	// The report reads back as the same configuration.
	if _, err := Parse("report", b); err != nil {
		t.Errorf("the report is not a valid config file: %v", err)
	}
	// The hash follows the configuration, and only it.
	_, again, _ := c.Report()
	c.Telemetry.Power.Interval = Duration(5 * 60e9)
	_, changed, _ := c.Report()
	if again != hash || changed == hash {
		t.Errorf("hash %s, again %s, changed %s", hash, again, changed)
	}
}

func TestTLSNeedsATLSBroker(t *testing.T) {
	_, err := Parse("x.yaml", []byte("uplink:\n  broker: tcp://broker:1883\n  tls:\n    ca: /etc/outpost/ca.pem\n"))
	if err == nil || !strings.Contains(err.Error(), "x.yaml:3: uplink.tls: certificates are set but uplink.broker \"tcp://broker:1883\" is not a TLS address: use ssl://") {
		t.Fatalf("%v", err)
	}
	if _, err := Parse("x.yaml", []byte("uplink:\n  broker: mqtts://broker:8883\n  tls:\n    ca: /etc/outpost/ca.pem\n")); err != nil {
		t.Fatal(err)
	}
}
