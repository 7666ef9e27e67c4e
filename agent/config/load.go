package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads a config file over the defaults, strictly, and validates it.
// Every problem is reported at once, each with the file, line and field.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load on bytes already read; name is used in messages.
func Parse(name string, b []byte) (Config, error) {
	cfg := Default()
	lines, decodeErrs, err := decodeStrict(name, b, &cfg)
	if err != nil {
		return Config{}, err
	}
	// Validate even when some keys failed to decode (they kept their
	// defaults), so that one run reports every problem in the file.
	all := decodeErrs
	if err := cfg.Validate(); err != nil {
		var es Errors
		if !errors.As(err, &es) {
			return Config{}, err
		}
		for _, e := range es {
			e.File = name
			e.Line = lineOf(lines, e.Field)
			all = append(all, e)
		}
	}
	if len(all) > 0 {
		sort.SliceStable(all, func(i, j int) bool { return all[i].Line < all[j].Line })
		return Config{}, all
	}
	return cfg, nil
}

// lineOf finds the line of a field path, or of its nearest parent present
// in the file.
func lineOf(lines map[string]int, field string) int {
	for f := field; f != ""; {
		if l, ok := lines[f]; ok {
			return l
		}
		i := strings.LastIndexByte(f, '.')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// decodeStrict decodes YAML into v (a pointer to a struct already holding
// defaults), rejecting unknown keys and wrong types with their line and
// field path. It returns the line of every field path present in the file
// and the per-field problems; err is set when the file cannot be read as
// YAML at all.
func decodeStrict(name string, b []byte, v any) (lines map[string]int, fieldErrs Errors, err error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, Errors{{File: name, Msg: "file is empty: start from configs/outpost.example.yaml"}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, Errors{{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil, Errors{{File: name, Msg: "file holds no YAML document"}}
	}
	d := &strictDecoder{file: name, lines: map[string]int{}}
	d.decode(doc.Content[0], reflect.ValueOf(v).Elem(), "")
	return d.lines, d.errs, nil
}

type strictDecoder struct {
	file  string
	lines map[string]int
	errs  Errors
}

func (d *strictDecoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{File: d.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *strictDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if _, ok := d.lines[path]; !ok && path != "" {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() == reflect.Pointer {
		if n.Tag == "!!null" {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, found %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a section of keys, found %s", kindName(n))
			return
		}
		fields := map[string]int{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = i
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			d.lines[sub] = k.Line
			if seen[k.Value] {
				d.fail(k, sub, "key given twice")
				continue
			}
			seen[k.Value] = true
			fi, ok := fields[k.Value]
			if !ok {
				d.fail(k, sub, "unknown key%s", suggest(k.Value, fields))
				continue
			}
			d.decode(val, v.Field(fi), sub)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, found %s", kindName(n))
			return
		}
		if v.Kind() == reflect.Array && len(n.Content) != v.Len() {
			d.fail(n, path, "expected a list of %d values, found %d", v.Len(), len(n.Content))
			return
		}
		if v.Kind() == reflect.Slice {
			v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		}
		for i, e := range n.Content {
			d.decode(e, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, found %s", kindName(n))
			return
		}
		tmp := reflect.New(v.Type())
		if err := n.Decode(tmp.Interface()); err != nil {
			d.fail(n, path, "%q is not %s", n.Value, typeName(v.Type()))
			return
		}
		v.Set(tmp.Elem())
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text"
	}
	return "a " + t.String()
}

// suggest names the closest known key, for typos such as "fsp" for "fps".
func suggest(key string, fields map[string]int) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if dd := editDistance(key, f); dd < bestD {
			best, bestD = f, dd
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
