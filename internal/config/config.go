// Package config is creek's registry of settings: every broker setting and
// topic config with its Kafka name, type, default, validation and
// documentation. The broker resolves values through it, the CLI loads flags,
// CREEK_* environment variables and YAML files into it, and the
// configuration reference is generated from it.
package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Type is the kind of value a setting holds.
type Type int

// Setting value types, named as Kafka's DescribeConfigs reports them.
const (
	String Type = iota
	Int
	Long
	Bool
	List
	Double
)

func (t Type) String() string {
	return [...]string{"string", "int", "long", "boolean", "list", "double"}[t]
}

// Setting describes one configuration key.
type Setting struct {
	Name    string // Kafka's name (or creek's own, for creek-only settings); also the YAML key
	Flag    string // long command-line flag for settings that have their own
	Type    Type
	Default string
	Doc     string
	Min     *int64   // lower bound for numbers
	Enum    []string // allowed values for strings
	check   func(string) error
}

// EnvName is the environment variable for a setting: CREEK_ plus the name in
// upper case with dots and dashes as underscores (log.retention.bytes ->
// CREEK_LOG_RETENTION_BYTES).
func (s *Setting) EnvName() string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "CREEK_" + strings.ToUpper(r.Replace(s.Name))
}

// Validate checks a value and returns it normalised (booleans and numbers
// in canonical form).
func (s *Setting) Validate(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch s.Type {
	case Int, Long:
		bits := 64
		if s.Type == Int {
			bits = 32
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return "", fmt.Errorf("%s must be a whole number, got %q", s.Name, v)
		}
		if s.Min != nil && n < *s.Min {
			return "", fmt.Errorf("%s must be at least %d, got %d", s.Name, *s.Min, n)
		}
		v = strconv.FormatInt(n, 10)
	case Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("%s must be true or false, got %q", s.Name, v)
		}
		v = strconv.FormatBool(b)
	case Double:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("%s must be a number such as 0.5, got %q", s.Name, v)
		}
		if s.Min != nil && f < float64(*s.Min) {
			return "", fmt.Errorf("%s must be at least %d, got %s", s.Name, *s.Min, v)
		}
		v = strconv.FormatFloat(f, 'g', -1, 64)
	}
	if len(s.Enum) > 0 {
		ok := false
		for _, e := range s.Enum {
			if strings.EqualFold(v, e) {
				v, ok = e, true
			}
		}
		if !ok {
			return "", fmt.Errorf("%s must be one of %s, got %q", s.Name, strings.Join(s.Enum, ", "), v)
		}
	}
	if s.check != nil {
		if err := s.check(v); err != nil {
			return "", fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return v, nil
}

func minimum(n int64) *int64 { return &n }

// Registry is an ordered, name-indexed set of settings.
type Registry struct {
	list   []*Setting
	byName map[string]*Setting
}

func newRegistry(settings []Setting) *Registry {
	r := &Registry{byName: map[string]*Setting{}}
	for i := range settings {
		s := &settings[i]
		r.list = append(r.list, s)
		r.byName[s.Name] = s
	}
	return r
}

// Lookup finds a setting by name.
func (r *Registry) Lookup(name string) (*Setting, bool) {
	s, ok := r.byName[name]
	return s, ok
}

// All returns the settings in registry order.
func (r *Registry) All() []*Setting { return r.list }

// Names returns the setting names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.list))
	for _, s := range r.list {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// UnknownError names an unknown key and lists what is allowed.
func (r *Registry) UnknownError(what, key string) error {
	return fmt.Errorf("unknown %s %q (known: %s)", what, key, strings.Join(r.Names(), ", "))
}
