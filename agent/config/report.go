package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Redacted returns a copy of c with every secret replaced by
// RedactedValue (empty secrets stay empty, so that a reader sees whether
// one is set).
func (c Config) Redacted() Config {
	redact(reflect.ValueOf(&c).Elem())
	return c
}

func redact(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			redact(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			redact(v.Field(i))
		}
	case reflect.String:
		if v.Type() == reflect.TypeFor[Secret]() && v.String() != "" && v.CanSet() {
			v.SetString(RedactedValue)
		}
	}
}

// Report returns the configuration as a JSON object with the keys of the
// YAML file, secrets redacted, and a hash identifying it (16 hex digits of
// the SHA-256 of that JSON), for the config/reported topic.
func (c Config) Report() (json.RawMessage, string, error) {
	y, err := yaml.Marshal(c.Redacted())
	if err != nil {
		return nil, "", fmt.Errorf("config: encoding for the report: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, "", fmt.Errorf("config: encoding for the report: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("config: encoding for the report: %w", err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:8]), nil
}
