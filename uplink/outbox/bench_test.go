package outbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var benchPayload = []byte(`{"v":1,"ts":"2026-11-25T12:00:00Z","battery_v":13.31,"battery_a":5.42,"soc_pct":84.2,"panel_v":18.6,"panel_w":79.5,"load_w":8.1,"charge_state":"bulk","yield_today_wh":312}`)

// BenchmarkPutLeaseAck is one telemetry message through the outbox: a
// durable Put (write and fsync), a Lease (read back and check) and an Ack.
// Compare with BenchmarkBaselineAppendSync, the bare write and fsync.
func BenchmarkPutLeaseAck(b *testing.B) {
	ob := open(b, Options{Dir: b.TempDir()})
	defer ob.Close()
	m := Message{Class: ClassTelemetry, Topic: "outpost/lamp-14/telemetry/power", Payload: benchPayload}
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ob.Put(m); err != nil {
			b.Fatal(err)
		}
		e, ok := ob.Lease()
		if !ok {
			b.Fatal("nothing leased")
		}
		if err := ob.Ack(e.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineAppendSync appends the same bytes to a plain file and
// fsyncs, the floor under any durable queue.
func BenchmarkBaselineAppendSync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := append([]byte(strings.Repeat(" ", 50)), benchPayload...)
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
