package pipeline

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// OptionType is the kind of value an option takes.
type OptionType int

// Option types.
const (
	TypeString OptionType = iota
	TypeInt
	TypeBool
	TypeDuration
	TypeStrings // a list; a repeatable flag
	TypeObject  // structured YAML, decoded by the plugin; a repeatable flag gives a list of strings
)

func (t OptionType) String() string {
	return [...]string{"string", "integer", "boolean", "duration", "list of strings", "list"}[t]
}

// Option describes one option of a source or sink.
type Option struct {
	Name    string // YAML key
	Flag    string // command-line flag of `creek produce`/`creek consume`; "" for YAML only
	Env     []string
	Type    OptionType
	Default string
	Doc     string
	Enum    []string
	Secret  bool // never shown in logs or errors
}

// Env is what a plugin gets besides its options.
type Env struct {
	Logger *slog.Logger
	Stats  *Stats
	// Shape is the form the processors give the records a sink receives
	// (see Reshaper): ShapeTweet after the tweet mapping, "" otherwise.
	Shape string
}

// Plugin is a source or sink type.
type Plugin struct {
	Name    string
	Doc     string
	Options []Option

	NewSource func(v *Values, env Env) (Source, error)
	NewSink   func(v *Values, env Env) (Sink, error)
}

// Option finds one of the plugin's options.
func (p *Plugin) Option(name string) (*Option, bool) {
	for i := range p.Options {
		if p.Options[i].Name == name {
			return &p.Options[i], true
		}
	}
	return nil, false
}

func (p *Plugin) optionNames() string {
	names := make([]string, len(p.Options))
	for i, o := range p.Options {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}

var registry struct {
	sync.Mutex
	sources map[string]*Plugin
	sinks   map[string]*Plugin
}

// RegisterSource makes a source type available by name.
func RegisterSource(p Plugin) { register(&registry.sources, p) }

// RegisterSink makes a sink type available by name.
func RegisterSink(p Plugin) { register(&registry.sinks, p) }

func register(m *map[string]*Plugin, p Plugin) {
	registry.Lock()
	defer registry.Unlock()
	if *m == nil {
		*m = map[string]*Plugin{}
	}
	if _, dup := (*m)[p.Name]; dup {
		panic("pipeline: plugin registered twice: " + p.Name)
	}
	(*m)[p.Name] = &p
}

// LookupSource finds a source type.
func LookupSource(name string) (*Plugin, error) { return lookup(registry.sources, "source", name) }

// LookupSink finds a sink type.
func LookupSink(name string) (*Plugin, error) { return lookup(registry.sinks, "sink", name) }

func lookup(m map[string]*Plugin, kind, name string) (*Plugin, error) {
	registry.Lock()
	defer registry.Unlock()
	if p, ok := m[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown %s %q (known: %s)", kind, name, strings.Join(names(m), ", "))
}

func names(m map[string]*Plugin) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Sources lists the registered source types, sorted by name.
func Sources() []*Plugin { return sorted(registry.sources) }

// Sinks lists the registered sink types, sorted by name.
func Sinks() []*Plugin { return sorted(registry.sinks) }

func sorted(m map[string]*Plugin) []*Plugin {
	registry.Lock()
	defer registry.Unlock()
	out := make([]*Plugin, 0, len(m))
	for _, n := range names(m) {
		out = append(out, m[n])
	}
	return out
}

// Values holds a plugin's validated options.
type Values struct {
	plugin *Plugin
	vals   map[string]any // string, int64, bool, time.Duration, []string or *yaml.Node
	given  map[string]bool
}

// Given reports whether an option was set (rather than defaulted).
func (v *Values) Given(name string) bool { return v.given[name] }

func (v *Values) get(name string) any {
	if _, ok := v.plugin.Option(name); !ok {
		panic(fmt.Sprintf("pipeline: plugin %s has no option %s", v.plugin.Name, name))
	}
	return v.vals[name]
}

// String returns a string option.
func (v *Values) String(name string) string { s, _ := v.get(name).(string); return s }

// Int returns an integer option.
func (v *Values) Int(name string) int64 { n, _ := v.get(name).(int64); return n }

// Bool returns a boolean option.
func (v *Values) Bool(name string) bool { b, _ := v.get(name).(bool); return b }

// Duration returns a duration option.
func (v *Values) Duration(name string) time.Duration { d, _ := v.get(name).(time.Duration); return d }

// Strings returns a list option.
func (v *Values) Strings(name string) []string { s, _ := v.get(name).([]string); return s }

// Decode decodes a structured option into out (nil node: out unchanged).
func (v *Values) Decode(name string, out any) error {
	n, _ := v.get(name).(*yaml.Node)
	if n == nil {
		return nil
	}
	if err := n.Decode(out); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Raw is an option value as given on the command line (one string per
// occurrence of a repeatable flag) or in YAML (a node).
type Raw struct {
	Flag []string
	Node *yaml.Node
}

// Bind validates raw option values against the plugin's options, fills in
// environment variables and defaults, and reports problems as
// "where: option: what is wrong and what is allowed".
func (p *Plugin) Bind(raw map[string]Raw, where func(line int) string) (*Values, error) {
	v := &Values{plugin: p, vals: map[string]any{}, given: map[string]bool{}}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o, ok := p.Option(k)
		if !ok {
			line := 0
			if n := raw[k].Node; n != nil {
				line = n.Line
			}
			return nil, fmt.Errorf("%s: %s has no option %q (known: %s)", where(line), p.Name, k, p.optionNames())
		}
		val, err := o.parse(raw[k])
		if err != nil {
			line := 0
			if n := raw[k].Node; n != nil {
				line = n.Line
			}
			return nil, fmt.Errorf("%s: %s option %s: %w", where(line), p.Name, k, err)
		}
		v.vals[k], v.given[k] = val, true
	}
	for i := range p.Options {
		o := &p.Options[i]
		if v.given[o.Name] {
			continue
		}
		for _, env := range o.Env {
			if s, ok := os.LookupEnv(env); ok && s != "" {
				val, err := o.parse(Raw{Flag: []string{s}})
				if err != nil {
					return nil, fmt.Errorf("environment variable %s: %w", env, err)
				}
				v.vals[o.Name], v.given[o.Name] = val, true
				break
			}
		}
		if !v.given[o.Name] {
			val, err := o.parse(Raw{Flag: []string{o.Default}})
			if o.Default == "" {
				val, err = o.zero(), nil
			}
			if err != nil {
				panic(fmt.Sprintf("pipeline: bad default for %s.%s: %v", p.Name, o.Name, err))
			}
			v.vals[o.Name] = val
		}
	}
	return v, nil
}

func (o *Option) zero() any {
	switch o.Type {
	case TypeInt:
		return int64(0)
	case TypeBool:
		return false
	case TypeDuration:
		return time.Duration(0)
	case TypeStrings:
		return []string(nil)
	case TypeObject:
		return (*yaml.Node)(nil)
	}
	return ""
}

// parse turns a raw value into the option's type.
func (o *Option) parse(r Raw) (any, error) {
	if o.Type == TypeObject {
		if r.Node != nil {
			return r.Node, nil
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, s := range r.Flag {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
		}
		return seq, nil
	}
	if o.Type == TypeStrings {
		if r.Node == nil {
			return r.Flag, nil
		}
		switch r.Node.Kind {
		case yaml.ScalarNode:
			return []string{r.Node.Value}, nil
		case yaml.SequenceNode:
			var out []string
			for _, c := range r.Node.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("want a list of strings")
				}
				out = append(out, c.Value)
			}
			return out, nil
		}
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	var s string
	switch {
	case r.Node != nil && r.Node.Kind != yaml.ScalarNode:
		return nil, fmt.Errorf("want a single %s", o.Type)
	case r.Node != nil:
		s = r.Node.Value
	case len(r.Flag) > 0:
		s = r.Flag[len(r.Flag)-1]
	}
	if len(o.Enum) > 0 {
		found := false
		for _, e := range o.Enum {
			found = found || e == s
		}
		if !found {
			return nil, fmt.Errorf("%q is not one of %s", o.display(s), strings.Join(o.Enum, ", "))
		}
	}
	switch o.Type {
	case TypeInt:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", o.display(s))
		}
		return n, nil
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", o.display(s))
		}
		return b, nil
	case TypeDuration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as 500ms, 10s or 5m", o.display(s))
		}
		return d, nil
	}
	return s, nil
}

func (o *Option) display(s string) string {
	if o.Secret {
		return "(hidden)"
	}
	return s
}

// ParseSize reads a size option such as 100MB, 1GiB, 512k or 1048576
// (K, M, G and KiB, MiB, GiB are powers of 1024; KB, MB, GB of 1000).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 100MB or 1GiB", s)
	}
	return int64(n * float64(mult)), nil
}

// ProcessorKind is a kind of processor (filter, map), registered by
// package processor; New compiles one from its argument (an expression,
// or a mapping's name).
type ProcessorKind struct {
	Name string
	Doc  string
	New  func(arg string) (Processor, error)
}

var processorKinds struct {
	sync.Mutex
	m map[string]*ProcessorKind
}

// RegisterProcessor makes a processor kind available by name.
func RegisterProcessor(k ProcessorKind) {
	processorKinds.Lock()
	defer processorKinds.Unlock()
	if processorKinds.m == nil {
		processorKinds.m = map[string]*ProcessorKind{}
	}
	if _, dup := processorKinds.m[k.Name]; dup {
		panic("pipeline: processor registered twice: " + k.Name)
	}
	processorKinds.m[k.Name] = &k
}

// NewProcessor compiles a processor of a registered kind.
func NewProcessor(kind, arg string) (Processor, error) {
	processorKinds.Lock()
	k, ok := processorKinds.m[kind]
	var known []string
	for n := range processorKinds.m {
		known = append(known, n)
	}
	processorKinds.Unlock()
	if !ok {
		sort.Strings(known)
		return nil, fmt.Errorf("unknown processor %q (known: %s)", kind, strings.Join(known, ", "))
	}
	p, err := k.New(arg)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, arg, err)
	}
	return p, nil
}

// ProcessorKinds lists the registered processor kinds, sorted by name.
func ProcessorKinds() []*ProcessorKind {
	processorKinds.Lock()
	defer processorKinds.Unlock()
	out := make([]*ProcessorKind, 0, len(processorKinds.m))
	for _, k := range processorKinds.m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
