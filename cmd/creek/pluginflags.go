package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// pluginFlags puts the options of several sources (or sinks) on one
// command as flags, and binds those of the chosen one.
type pluginFlags struct {
	plugins  []*pipeline.Plugin
	selector string              // the flag that chooses the plugin: from or to
	owners   map[string][]string // flag -> plugins that have it
}

func addPluginFlags(f *pflag.FlagSet, plugins []*pipeline.Plugin, selector string) *pluginFlags {
	pf := &pluginFlags{plugins: plugins, selector: selector, owners: map[string][]string{}}
	docs := map[string]*pipeline.Option{}
	var order []string
	for _, p := range plugins {
		for i := range p.Options {
			o := &p.Options[i]
			if o.Flag == "" {
				continue
			}
			if _, seen := docs[o.Flag]; !seen {
				docs[o.Flag] = o
				order = append(order, o.Flag)
			}
			pf.owners[o.Flag] = append(pf.owners[o.Flag], p.Name)
		}
	}
	for _, name := range order {
		o := docs[name]
		usage := o.Doc
		if len(plugins) > 1 {
			usage = fmt.Sprintf("%s (--%s %s)", o.Doc, selector, strings.Join(pf.owners[name], "|"))
		}
		switch o.Type {
		case pipeline.TypeBool:
			def, _ := strconv.ParseBool(o.Default)
			f.Bool(name, def, usage)
		case pipeline.TypeStrings, pipeline.TypeObject:
			f.StringArray(name, nil, usage)
		default:
			f.String(name, o.Default, usage)
		}
	}
	return pf
}

// bind validates the flags given for the chosen plugin and refuses flags
// that belong to other plugins.
func (pf *pluginFlags) bind(cmd *cobra.Command, chosen string) (*pipeline.Plugin, *pipeline.Values, error) {
	var plugin *pipeline.Plugin
	var names []string
	for _, p := range pf.plugins {
		names = append(names, p.Name)
		if p.Name == chosen {
			plugin = p
		}
	}
	if plugin == nil {
		return nil, nil, usageError{fmt.Errorf("--%s %q: want one of %s", pf.selector, chosen, strings.Join(names, ", "))}
	}
	raw := map[string]pipeline.Raw{}
	var foreign []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		owners, ok := pf.owners[f.Name]
		if !ok {
			return
		}
		o := optionByFlag(plugin, f.Name)
		if o == nil {
			foreign = append(foreign, fmt.Sprintf("--%s (for --%s %s)", f.Name, pf.selector, strings.Join(owners, "|")))
			return
		}
		if sa, ok := f.Value.(pflag.SliceValue); ok {
			raw[o.Name] = pipeline.Raw{Flag: sa.GetSlice()}
		} else {
			raw[o.Name] = pipeline.Raw{Flag: []string{f.Value.String()}}
		}
	})
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return nil, nil, usageError{fmt.Errorf("--%s %s does not take %s", pf.selector, chosen, strings.Join(foreign, ", "))}
	}
	v, err := plugin.Bind(raw, func(int) string { return "flags" })
	if err != nil {
		return nil, nil, usageError{err}
	}
	return plugin, v, nil
}

func optionByFlag(p *pipeline.Plugin, flag string) *pipeline.Option {
	for i := range p.Options {
		if p.Options[i].Flag == flag {
			return &p.Options[i]
		}
	}
	return nil
}

// pipelineFlags are the flags of consume and produce that belong to the
// pipeline rather than to its source or sink: --filter and --map, kept in
// the order given (a filter before a map sees the record as read, after
// it the mapped one), and --dead-letter-topic.
type pipelineFlags struct {
	steps           []processorStep
	deadLetterTopic string
}

type processorStep struct{ kind, arg string }

// stepFlag is --filter or --map: both append to one list.
type stepFlag struct {
	pf   *pipelineFlags
	kind string
}

func (s stepFlag) String() string { return "" }
func (s stepFlag) Type() string   { return "expr" }
func (s stepFlag) Set(v string) error {
	s.pf.steps = append(s.pf.steps, processorStep{s.kind, v})
	return nil
}

func addPipelineFlags(f *pflag.FlagSet) *pipelineFlags {
	pf := &pipelineFlags{}
	f.Var(stepFlag{pf, "filter"}, "filter", `keep only the records for which this expression is true, such as 'value.data.lang == "ko"' (repeatable; see docs/processors.md)`)
	f.Var(stepFlag{pf, "map"}, "map", "replace each record's value: tweet (the flat fields id, created_at, lang, author_id, username, text, hashtags, raw) or an expression such as '{\"id\": value.data.id}' (repeatable, applied in order with --filter)")
	f.StringVar(&pf.deadLetterTopic, "dead-letter-topic", "", "Kafka topic for records a processor cannot process or the store refuses alone, with Kafka Connect's error headers; without it such a record stops the pipeline")
	return pf
}

// apply compiles the processors into the spec.
func (pf *pipelineFlags) apply(spec *pipeline.Spec) error {
	for _, s := range pf.steps {
		p, err := pipeline.NewProcessor(s.kind, s.arg)
		if err != nil {
			return usageError{fmt.Errorf("--%s: %w", s.kind, err)}
		}
		spec.Processors = append(spec.Processors, p)
	}
	spec.DeadLetterTopic = pf.deadLetterTopic
	return nil
}
