package pipeline

import (
	"fmt"
	"log/slog"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/creek-pipeline/creek/internal/config"
)

// Spec is a configured, validated pipeline, ready to be built.
type Spec struct {
	Name       string
	Source     *Plugin
	SourceOpts *Values
	Processors []Processor // compiled, in order
	Sink       *Plugin
	SinkOpts   *Values

	// DeadLetterTopic is where messages that failed alone go; "" stops
	// the pipeline at such a message.
	DeadLetterTopic string
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
	env.Shape = ""
	for _, p := range s.Processors {
		if r, ok := p.(Reshaper); ok {
			env.Shape = r.Shape()
		}
	}
	var dlq Sink
	if s.DeadLetterTopic != "" {
		var err error
		if dlq, err = s.deadLetterSink(env); err != nil {
			return nil, fmt.Errorf("pipeline %s: dead-letter topic %s: %w", s.Name, s.DeadLetterTopic, err)
		}
	}
	closeDLQ := func() {
		if dlq != nil {
			dlq.Close()
		}
	}
	src, err := s.Source.NewSource(s.SourceOpts, env)
	if err != nil {
		closeDLQ()
		return nil, fmt.Errorf("pipeline %s: source %s: %w", s.Name, s.Source.Name, err)
	}
	sink, err := s.Sink.NewSink(s.SinkOpts, env)
	if err != nil {
		if c, ok := src.(Closer); ok {
			c.Close()
		}
		closeDLQ()
		return nil, fmt.Errorf("pipeline %s: sink %s: %w", s.Name, s.Sink.Name, err)
	}
	return &Pipeline{Name: s.Name, Source: src, Processors: s.Processors, Sink: sink, SinkName: s.Sink.Name,
		Stats: env.Stats, Logger: env.Logger, DeadLetters: dlq, DeadLetterTopic: s.DeadLetterTopic}, nil
}

// deadLetterSink is a Kafka sink for the dead-letter topic, waiting for
// acks=all, on the Kafka cluster of the pipeline's Kafka source or sink
// (else --brokers' default, CREEK_BROKERS or localhost:9092).
func (s *Spec) deadLetterSink(env Env) (Sink, error) {
	kafka, err := LookupSink("kafka")
	if err != nil {
		return nil, err
	}
	raw := map[string]Raw{"topic": {Flag: []string{s.DeadLetterTopic}}, "acks": {Flag: []string{"all"}}}
	for _, side := range []struct {
		p *Plugin
		v *Values
	}{{s.Source, s.SourceOpts}, {s.Sink, s.SinkOpts}} {
		for _, t := range kafkaTopics(side.p, side.v) {
			if t == s.DeadLetterTopic {
				return nil, fmt.Errorf("the pipeline reads or writes that topic itself: choose another name, such as %s-dlq", t)
			}
		}
	}
	for _, side := range []struct {
		p *Plugin
		v *Values
	}{{s.Source, s.SourceOpts}, {s.Sink, s.SinkOpts}} {
		if _, ok := side.p.Option("brokers"); ok {
			for _, name := range kafkaConnectionOptions {
				o, ok := side.p.Option(name)
				switch {
				case !ok:
				case o.Type == TypeBool:
					raw[name] = Raw{Flag: []string{fmt.Sprint(side.v.Bool(name))}}
				case side.v.String(name) != "":
					raw[name] = Raw{Flag: []string{side.v.String(name)}}
				}
			}
			break
		}
	}
	v, err := kafka.Bind(raw, func(int) string { return "dead-letter-topic" })
	if err != nil {
		return nil, err
	}
	env.Shape = ""
	return kafka.NewSink(v, env)
}

// kafkaConnectionOptions are the options of a Kafka source or sink that say
// how to reach and log in to the cluster (kafkaopt), which the dead-letter
// topic's producer takes from them.
var kafkaConnectionOptions = []string{"brokers", "tls", "tls-ca", "tls-cert", "tls-key", "sasl-mechanism", "sasl-user", "sasl-password", "sasl-password-file"}

// kafkaTopics lists the topics a Kafka source or sink names.
func kafkaTopics(p *Plugin, v *Values) []string {
	o, ok := p.Option("topic")
	if !ok || p.Name != "kafka" {
		return nil
	}
	if o.Type == TypeStrings {
		var out []string
		for _, t := range v.Strings("topic") {
			for _, s := range strings.Split(t, ",") {
				out = append(out, strings.TrimSpace(s))
			}
		}
		return out
	}
	return []string{v.String("topic")}
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
	procs, dlq := f.Sections["processors"], f.Sections["dead-letter-topic"]
	switch {
	case list != nil && (in != nil || out != nil):
		return nil, fmt.Errorf("%s: give either input and output, or a pipelines list, not both", where(list.Line))
	case list != nil && (procs != nil || dlq != nil):
		n := procs
		if n == nil {
			n = dlq
		}
		return nil, fmt.Errorf("%s: with a pipelines list, give processors and dead-letter-topic inside each pipeline", where(n.Line))
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
		spec := &Spec{Name: "main", Source: src, SourceOpts: srcOpts, Sink: sink, SinkOpts: sinkOpts}
		if err := spec.readExtras(procs, dlq, where); err != nil {
			return nil, err
		}
		return []*Spec{spec}, nil
	}
	return nil, nil
}

// readExtras reads a pipeline's processors list and dead-letter topic
// (either may be nil).
func (s *Spec) readExtras(procs, dlq *yaml.Node, where func(int) string) error {
	if dlq != nil {
		if dlq.Kind != yaml.ScalarNode || dlq.Value == "" {
			return fmt.Errorf("%s: dead-letter-topic must be a topic name", where(dlq.Line))
		}
		s.DeadLetterTopic = dlq.Value
	}
	if procs == nil {
		return nil
	}
	const shape = "processors must be a list such as [{filter: 'value.data.lang == \"ko\"'}, {map: tweet}]"
	if procs.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: %s", where(procs.Line), shape)
	}
	for _, item := range procs.Content {
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 || item.Content[1].Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: each processor is one kind and its expression, such as `- filter: 'value.data.lang == \"ko\"'`: %s", where(item.Line), shape)
		}
		p, err := NewProcessor(item.Content[0].Value, item.Content[1].Value)
		if err != nil {
			return fmt.Errorf("%s: %w", where(item.Content[1].Line), err)
		}
		s.Processors = append(s.Processors, p)
	}
	return nil
}

func specFromNode(n *yaml.Node, defaultName string, where func(int) string) (*Spec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a pipeline is a mapping with name, input and output", where(n.Line))
	}
	spec := &Spec{Name: defaultName}
	var in, out, procs, dlq *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			spec.Name = v.Value
		case "input":
			in = v
		case "output":
			out = v
		case "processors":
			procs = v
		case "dead-letter-topic":
			dlq = v
		default:
			return nil, fmt.Errorf("%s: unknown pipeline key %q (known: name, input, processors, output, dead-letter-topic)", where(k.Line), k.Value)
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
	if err := spec.readExtras(procs, dlq, where); err != nil {
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
