package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a parsed creek YAML file. The broker section holds broker
// settings under the names of BrokerSettings; the pipeline sections (input
// and output for one pipeline, or a pipelines list) are kept as YAML nodes
// for package pipeline, which knows the sources and sinks.
type File struct {
	Path     string
	Broker   map[string]FileValue
	Sections map[string]*yaml.Node // input, output, processors, dead-letter-topic, pipelines
}

// FileValue is a value from a YAML file with the line it is on, for errors.
type FileValue struct {
	Value string
	Line  int
}

// Sections a creek YAML file may have.
var fileSections = []string{"broker", "input", "processors", "output", "dead-letter-topic", "pipelines"}

// ReadFile parses a creek YAML file, rejecting unknown sections and keys
// with the file name and line.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &File{Path: path, Broker: map[string]FileValue{}, Sections: map[string]*yaml.Node{}}
	if len(doc.Content) == 0 {
		return f, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of sections (%s)", path, root.Line, strings.Join(fileSections, ", "))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		switch key.Value {
		case "broker":
			if err := f.readBroker(val); err != nil {
				return nil, err
			}
		case "input", "output", "processors", "dead-letter-topic", "pipelines":
			f.Sections[key.Value] = val
		default:
			return nil, fmt.Errorf("%s:%d: unknown section %q (known: %s)", path, key.Line, key.Value, strings.Join(fileSections, ", "))
		}
	}
	return f, nil
}

func (f *File) readBroker(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: broker must be a mapping of settings", f.Path, n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		s, ok := BrokerSettings.Lookup(key.Value)
		if !ok {
			return fmt.Errorf("%s:%d: %w", f.Path, key.Line, BrokerSettings.UnknownError("broker setting", key.Value))
		}
		if val.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: %s must be a single value", f.Path, val.Line, key.Value)
		}
		if _, err := s.Validate(val.Value); err != nil {
			return fmt.Errorf("%s:%d: %w", f.Path, val.Line, err)
		}
		f.Broker[key.Value] = FileValue{Value: val.Value, Line: val.Line}
	}
	return nil
}

// MergeBroker combines broker settings from their three sources, highest
// precedence first: command-line flags, CREEK_* environment variables, the
// YAML file (may be nil). It returns only the settings given explicitly.
func MergeBroker(flags map[string]string, environ []string, file *File) (map[string]string, error) {
	out := map[string]string{}
	if file != nil {
		for k, v := range file.Broker {
			out[k] = v.Value
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, s := range BrokerSettings.All() {
		if v, ok := env[s.EnvName()]; ok {
			if _, err := s.Validate(v); err != nil {
				return nil, fmt.Errorf("environment variable %s: %w", s.EnvName(), err)
			}
			out[s.Name] = v
		}
	}
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := BrokerSettings.Lookup(k)
		if !ok {
			return nil, BrokerSettings.UnknownError("broker setting", k)
		}
		if _, err := s.Validate(flags[k]); err != nil {
			return nil, err
		}
		out[k] = flags[k]
	}
	return out, nil
}
