package pipeline

import (
	"fmt"
	"log/slog"

	"go.yaml.in/yaml/v3"

	"github.com/creek-pipeline/creek/internal/config"
)

// Spec is a configured, validated pipeline, ready to be built.
type Spec struct {
	Name       string
	Source     *Plugin
	SourceOpts *Values
	Sink       *Plugin
	SinkOpts   *Values
}

// Build creates the pipeline's source and sink.
func (s *Spec) Build(env Env) (*Pipeline, error) {
	if env.Stats == nil {
		env.Stats = &Stats{}
	}
	env.Stats.Lag.Store(-1)
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	env.Logger = env.Logger.With("pipeline", s.Name)
	src, err := s.Source.NewSource(s.SourceOpts, env)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: source %s: %w", s.Name, s.Source.Name, err)
	}
	sink, err := s.Sink.NewSink(s.SinkOpts, env)
	if err != nil {
		if c, ok := src.(Closer); ok {
			c.Close()
		}
		return nil, fmt.Errorf("pipeline %s: sink %s: %w", s.Name, s.Sink.Name, err)
	}
	return &Pipeline{Name: s.Name, Source: src, Sink: sink, Stats: env.Stats, Logger: env.Logger}, nil
}

// SpecsFromFile reads the pipelines of a creek YAML file: either one
// pipeline as top-level input and output sections, Logstash style,
//
//	input:
//	  generate: {rate: 5}
//	output:
//	  kafka: {topic: tweets}
//
// or several under pipelines, each with a name, an input and an output.
func SpecsFromFile(f *config.File) ([]*Spec, error) {
	where := func(line int) string {
		if line > 0 {
			return fmt.Sprintf("%s:%d", f.Path, line)
		}
		return f.Path
	}
	in, out, list := f.Sections["input"], f.Sections["output"], f.Sections["pipelines"]
	switch {
	case list != nil && (in != nil || out != nil):
		return nil, fmt.Errorf("%s: give either input and output, or a pipelines list, not both", where(list.Line))
	case list != nil:
		if list.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s: pipelines must be a list", where(list.Line))
		}
		var specs []*Spec
		names := map[string]bool{}
		for i, item := range list.Content {
			spec, err := specFromNode(item, fmt.Sprintf("pipeline-%d", i+1), where)
			if err != nil {
				return nil, err
			}
			if names[spec.Name] {
				return nil, fmt.Errorf("%s: two pipelines are named %q", where(item.Line), spec.Name)
			}
			names[spec.Name] = true
			specs = append(specs, spec)
		}
		return specs, nil
	case in != nil || out != nil:
		if in == nil || out == nil {
			return nil, fmt.Errorf("%s: a pipeline needs both an input and an output section", f.Path)
		}
		src, srcOpts, err := pluginFromNode(in, "input", LookupSource, where)
		if err != nil {
			return nil, err
		}
		sink, sinkOpts, err := pluginFromNode(out, "output", LookupSink, where)
		if err != nil {
			return nil, err
		}
		return []*Spec{{Name: "main", Source: src, SourceOpts: srcOpts, Sink: sink, SinkOpts: sinkOpts}}, nil
	}
	return nil, nil
}

func specFromNode(n *yaml.Node, defaultName string, where func(int) string) (*Spec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a pipeline is a mapping with name, input and output", where(n.Line))
	}
	spec := &Spec{Name: defaultName}
	var in, out *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			spec.Name = v.Value
		case "input":
			in = v
		case "output":
			out = v
		default:
			return nil, fmt.Errorf("%s: unknown pipeline key %q (known: name, input, output)", where(k.Line), k.Value)
		}
	}
	if in == nil || out == nil {
		return nil, fmt.Errorf("%s: pipeline %s needs an input and an output", where(n.Line), spec.Name)
	}
	var err error
	if spec.Source, spec.SourceOpts, err = pluginFromNode(in, "input", LookupSource, where); err != nil {
		return nil, err
	}
	if spec.Sink, spec.SinkOpts, err = pluginFromNode(out, "output", LookupSink, where); err != nil {
		return nil, err
	}
	return spec, nil
}

// pluginFromNode reads a section naming one plugin and its options:
//
//	generate:
//	  rate: 5
func pluginFromNode(n *yaml.Node, section string, lookup func(string) (*Plugin, error), where func(int) string) (*Plugin, *Values, error) {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		kind, example := "source", "generate: {rate: 5}"
		if section == "output" {
			kind, example = "sink", "kafka: {topic: tweets}"
		}
		return nil, nil, fmt.Errorf("%s: %s must name exactly one %s type with its options, such as `%s: {%s}`", where(n.Line), section, kind, section, example)
	}
	k, v := n.Content[0], n.Content[1]
	p, err := lookup(k.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", where(k.Line), section, err)
	}
	raw := map[string]Raw{}
	switch {
	case v.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			raw[v.Content[i].Value] = Raw{Node: v.Content[i+1]}
		}
	case v.Kind == yaml.ScalarNode && (v.Tag == "!!null" || v.Value == ""):
	default:
		return nil, nil, fmt.Errorf("%s: the options of %s must be a mapping", where(v.Line), k.Value)
	}
	vals, err := p.Bind(raw, where)
	if err != nil {
		return nil, nil, err
	}
	return p, vals, nil
}

// NewSpec builds a spec in code, with options given as flag values.
func NewSpec(name, source string, sourceOpts map[string][]string, sink string, sinkOpts map[string][]string) (*Spec, error) {
	src, err := LookupSource(source)
	if err != nil {
		return nil, err
	}
	dst, err := LookupSink(sink)
	if err != nil {
		return nil, err
	}
	raw := func(m map[string][]string) map[string]Raw {
		out := map[string]Raw{}
		for k, v := range m {
			out[k] = Raw{Flag: v}
		}
		return out
	}
	where := func(int) string { return name }
	sv, err := src.Bind(raw(sourceOpts), where)
	if err != nil {
		return nil, err
	}
	dv, err := dst.Bind(raw(sinkOpts), where)
	if err != nil {
		return nil, err
	}
	return &Spec{Name: name, Source: src, SourceOpts: sv, Sink: dst, SinkOpts: dv}, nil
}
