package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/pipeline"
)

// configurationReference renders docs/configuration.md from the code: the
// broker settings and topic configs of internal/config, the options of
// every source and sink, and the flags of every command.
func configurationReference(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString(config.ReferenceMarkdown())

	b.WriteString(`
## Pipeline sources and sinks

` + "`creek produce`, `creek consume`, `creek run` and `creek up`" + ` move records from a
source to a sink. In a YAML file (` + "`creek run FILE`" + `, ` + "`creek up --config FILE`" + `) a
source goes under ` + "`input:`" + ` and a sink under ` + "`output:`" + `, each named by its type with
its options; on the command line the options are flags.

` + "```yaml" + `
input:
  x:
    rules:
      - value: "kafka lang:ko"
        tag: korean-kafka
output:
  kafka:
    brokers: localhost:9092
    topic: tweets
` + "```" + `

Several pipelines go in a list:

` + "```yaml" + `
pipelines:
  - name: collect
    input:  {generate: {rate: 5}}
    output: {kafka: {topic: tweets}}
  - name: archive
    input:  {kafka: {topic: tweets, group: archive, from-beginning: true}}
    output: {file: {path: tweets.jsonl, rotate-size: 100MB}}
` + "```" + `
`)
	section := func(kind string, plugins []*pipeline.Plugin) {
		for _, p := range plugins {
			fmt.Fprintf(&b, "\n### %s `%s`\n\n%s\n\n", kind, p.Name, p.Doc)
			if len(p.Options) == 0 {
				b.WriteString("No options.\n")
				continue
			}
			b.WriteString("| YAML key | Flag | Environment | Type | Default | Description |\n|---|---|---|---|---|---|\n")
			for _, o := range p.Options {
				flag, env := "—", "—"
				if o.Flag != "" {
					flag = "`--" + o.Flag + "`"
				}
				if len(o.Env) > 0 {
					env = "`" + strings.Join(o.Env, "`, `") + "`"
				}
				doc := o.Doc
				if len(o.Enum) > 0 {
					doc += " One of: " + strings.Join(o.Enum, ", ") + "."
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", o.Name, flag, env, o.Type, codeOr(o.Default), mdCell(doc))
			}
		}
	}
	section("Source", pipeline.Sources())
	section("Sink", pipeline.Sinks())

	b.WriteString("\n## Commands and their flags\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() {
			fmt.Fprintf(&b, "\n### `%s`\n\n%s\n\n", c.CommandPath(), c.Short)
			var rows []string
			c.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Name == "help" {
					return
				}
				rows = append(rows, fmt.Sprintf("| `--%s` | %s | %s |", f.Name, codeOr(f.DefValue), mdCell(f.Usage)))
			})
			if len(rows) > 0 {
				sort.Strings(rows)
				b.WriteString("| Flag | Default | Description |\n|---|---|---|\n")
				b.WriteString(strings.Join(rows, "\n") + "\n")
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	fmt.Fprintf(&b, "\nEvery command also takes `--log-level` (debug, info, warn, error; default info).\n")
	return b.String()
}

func codeOr(v string) string {
	if v == "" || v == "[]" {
		return "—"
	}
	return "`" + v + "`"
}

func mdCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
