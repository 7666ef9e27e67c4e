package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file holds what a remote configuration change needs of the config:
// the configuration as a tree with the file's keys, a change applied to it
// (a JSON merge patch, or a whole configuration), checked as strictly as a
// file, and the changes between two configurations in words.

// RedactedValue stands for a secret in reports, histories and diffs. A
// remote change that gives a secret as RedactedValue keeps the unit's own.
const RedactedValue = "[redacted]"

// Tree returns the configuration as nested maps with the keys of the YAML
// file, secrets included.
func (c Config) Tree() (map[string]any, error) {
	y, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: encoding: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, fmt.Errorf("config: encoding: %w", err)
	}
	return m, nil
}

// Marshal returns the configuration as a YAML file, headed by the comment
// lines of header (each prefixed with "# ").
func (c Config) Marshal(header string) ([]byte, error) {
	y, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: encoding: %w", err)
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		if l != "" {
			b.WriteString("# " + l + "\n")
		}
	}
	b.WriteString(string(y))
	return []byte(b.String()), nil
}

// Apply returns the configuration a remote change makes of c. With full
// false, change is a JSON merge patch (RFC 7386) on c: objects merge key
// by key, a null removes the key (it takes its default), any other value
// replaces. With full true, change is a whole configuration over the
// defaults, as a file is: keys it leaves out take their defaults. Either
// way a secret given as RedactedValue keeps c's value, so that a reported
// configuration edited and sent back does not wipe passwords. The result
// is checked as strictly as a file; every problem is reported at once,
// each naming its field (name stands for the file).
func (c Config) Apply(name string, change json.RawMessage, full bool) (Config, error) {
	var patch map[string]any
	dec := json.NewDecoder(strings.NewReader(string(change)))
	dec.UseNumber()
	if err := dec.Decode(&patch); err != nil || patch == nil {
		return Config{}, Errors{{File: name, Msg: fmt.Sprintf("config is not a JSON object: %v", err)}}
	}
	base := map[string]any{}
	if !full {
		t, err := c.Tree()
		if err != nil {
			return Config{}, err
		}
		base = t
	}
	merged := mergePatch(base, numbers(patch).(map[string]any))
	for _, p := range SecretFields() {
		if v, ok := lookup(merged, p); ok && v == RedactedValue {
			set(merged, p, reflectField(c, p))
		}
	}
	y, err := yaml.Marshal(merged)
	if err != nil {
		return Config{}, fmt.Errorf("config: encoding the change: %w", err)
	}
	out, err := Parse(name, y)
	if err != nil {
		var es Errors
		if errors.As(err, &es) {
			// The lines are those of a file made here, not the sender's.
			for i := range es {
				es[i].Line = 0
			}
			return Config{}, es
		}
		return Config{}, err
	}
	return out, nil
}

// mergePatch applies an RFC 7386 merge patch to target (which it may
// modify) and returns the result.
func mergePatch(target map[string]any, patch map[string]any) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			tv, _ := target[k].(map[string]any)
			target[k] = mergePatch(tv, pv)
		default:
			target[k] = pv
		}
	}
	return target
}

// numbers turns the json.Numbers of a decoded value into int64 where they
// are whole, float64 otherwise, so that they are written to YAML as
// numbers (1000000, not 1e+06 or "1000000").
func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return string(v)
	}
	return v
}

func lookup(m map[string]any, path string) (any, bool) {
	keys := strings.Split(path, ".")
	for i, k := range keys {
		v, ok := m[k]
		if !ok {
			return nil, false
		}
		if i == len(keys)-1 {
			return v, true
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

func set(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// SecretFields lists the field paths (as in the YAML file) of every
// secret in the configuration.
func SecretFields() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft == reflect.TypeFor[Secret]():
				out = append(out, prefix+name)
			case ft.Kind() == reflect.Struct:
				walk(ft, prefix+name+".")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// reflectField returns the value at a field path of c, as a string for a
// secret.
func reflectField(c Config, path string) any {
	v := reflect.ValueOf(c)
	for _, k := range strings.Split(path, ".") {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil
			}
			v = v.Elem()
		}
		found := false
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name == k {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return nil
		}
	}
	if v.Kind() == reflect.String {
		return v.String()
	}
	return v.Interface()
}

// Change is one difference between two configurations.
type Change struct {
	// Field is the path as in the YAML file: telemetry.power.interval.
	Field string `json:"field"`
	// Old and New are the values as written in the file; "" when absent.
	// A secret is never shown: it reads RedactedValue, or "" when unset.
	Old string `json:"old"`
	New string `json:"new"`
}

func (ch Change) String() string {
	switch {
	case ch.Old == "":
		return fmt.Sprintf("%s: set to %s", ch.Field, ch.New)
	case ch.New == "":
		return fmt.Sprintf("%s: %s removed", ch.Field, ch.Old)
	case ch.Old == ch.New: // a secret replaced by another
		return fmt.Sprintf("%s: changed (secret)", ch.Field)
	}
	return fmt.Sprintf("%s: %s → %s", ch.Field, ch.Old, ch.New)
}

// Changes lists what differs from old to new, field by field in file
// order, secrets never shown.
func Changes(old, new Config) ([]Change, error) {
	a, err := old.Tree()
	if err != nil {
		return nil, err
	}
	b, err := new.Tree()
	if err != nil {
		return nil, err
	}
	return TreeChanges(a, b), nil
}

// TreeChanges is Changes on configuration trees (as Tree returns, or as a
// reported configuration decodes); a secret is shown as RedactedValue.
func TreeChanges(a, b map[string]any) []Change {
	fa, fb := map[string]string{}, map[string]string{}
	flatten(a, "", fa)
	flatten(b, "", fb)
	secret := map[string]bool{}
	for _, p := range SecretFields() {
		secret[p] = true
	}
	var out []Change
	seen := map[string]bool{}
	for _, k := range append(sortedKeys(fa), sortedKeys(fb)...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		va, vb := fa[k], fb[k]
		if va == vb {
			continue
		}
		if secret[k] {
			out = append(out, Change{Field: k, Old: redactString(va), New: redactString(vb)})
			continue
		}
		out = append(out, Change{Field: k, Old: va, New: vb})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func redactString(s string) string {
	if s == "" {
		return ""
	}
	return RedactedValue
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// flatten writes every leaf of a tree as path → value. Lists are leaves,
// written as JSON.
func flatten(v any, prefix string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(e, p, out)
		}
	case nil:
	case []any:
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	default:
		out[prefix] = fmt.Sprint(v)
	}
}

// LinkFields are the parts of the configuration a change to which can cut
// the unit off from the control room: such a change is kept only once the
// unit has reached the control room with it.
var linkFields = []string{"uplink.", "modem."}

// TouchesLink reports whether any of changes can cut the unit's link.
func TouchesLink(changes []Change) bool {
	for _, c := range changes {
		for _, p := range linkFields {
			if strings.HasPrefix(c.Field, p) {
				return true
			}
		}
	}
	return false
}

// liveFields are the parts of the configuration the running agent takes
// without restarting its components.
var liveFields = []string{"telemetry."}

// Live reports whether every one of changes can be taken by the running
// agent in place, without restarting a component.
func Live(changes []Change) bool {
	for _, c := range changes {
		ok := false
		for _, p := range liveFields {
			ok = ok || strings.HasPrefix(c.Field, p)
		}
		if !ok {
			return false
		}
	}
	return true
}

// Fixed lists the fields a remote change may not alter, with why: the
// unit's identity and where its footage is kept are set on the unit.
func Fixed(old, new Config) Errors {
	var es Errors
	if old.Unit.ID != new.Unit.ID {
		es = append(es, FieldError{Field: "unit.id", Msg: fmt.Sprintf("this configuration is for unit %q, but this unit is %q; a unit's id is changed on the unit itself", new.Unit.ID, old.Unit.ID)})
	}
	if old.DataDir != new.DataDir {
		es = append(es, FieldError{Field: "data_dir", Msg: "where footage is kept can only be changed on the unit itself (footage would be left behind)"})
	}
	return es
}
