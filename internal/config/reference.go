package config

import (
	"fmt"
	"strings"
)

// ReferenceMarkdown renders the configuration reference (docs/configuration.md)
// from the registries, so the documentation cannot drift from the code.
func ReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from the code by "make docs"; do not edit by hand. -->

## Broker settings

` + "`creek broker`" + ` takes its settings from, highest precedence first: command-line
flags, ` + "`CREEK_*`" + ` environment variables, the ` + "`broker:`" + ` section of the YAML file
given with ` + "`--config`" + `, and the defaults below. Settings that Kafka also has keep
Kafka's names; set them on the command line with ` + "`--override name=value`" + `.

` + "```yaml" + `
# creek.yaml
broker:
  data-dir: /var/lib/creek
  advertised-addr: broker.example.com:9092
  log.retention.bytes: 1073741824
  num.partitions: 3
` + "```" + `

| Setting (YAML key) | Flag | Environment variable | Default | Description |
|---|---|---|---|---|
`)
	for _, s := range BrokerSettings.All() {
		flag := "`--override " + s.Name + "=…`"
		if s.Flag != "" {
			flag = "`--" + s.Flag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", s.Name, flag, s.EnvName(), codeOrDash(s.Default), describe(s))
	}
	b.WriteString(`
## Topic configs

Per-topic settings, with Kafka's names. Set them when creating a topic
(` + "`creek topics create NAME --config retention.ms=3600000`" + `, or any Kafka admin client)
or later (` + "`creek topics alter NAME --config ...`" + `). A topic without its own value
uses the broker setting named in the second column.

| Topic config | Default from broker setting | Default | Description |
|---|---|---|---|
`)
	for _, s := range TopicConfigs.All() {
		tc, _ := TopicConfigs.Topic(s.Name)
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, codeOrDash(tc.BrokerName), codeOrDash(s.Default), describe(s))
	}
	b.WriteString(`
## Group configs

Per-group settings (Kafka 4's group configs), set on a GROUP resource with
IncrementalAlterConfigs, e.g. ` + "`kafka-configs --entity-type groups --entity-name NAME --alter --add-config share.record.lock.duration.ms=15000`" + `.
They apply to that group alone; a group without its own value uses the broker
setting in the second column. The bounds are Kafka's.

| Group config | Default from broker setting | Default | Description |
|---|---|---|---|
`)
	for _, s := range GroupConfigs.All() {
		gc, _ := GroupConfigs.Topic(s.Name)
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Name, codeOrDash(gc.BrokerName), codeOrDash(s.Default), describe(s))
	}
	b.WriteString(`
## Kafka broker configs creek fixes

Kafka broker configs that DescribeConfigs on the broker reports, read-only,
with the value creek works with. They cannot be set.

| Broker config | Value | Description |
|---|---|---|
`)
	for _, s := range FixedBrokerConfigs.All() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, codeOrDash(s.Default), describe(s))
	}
	return b.String()
}

func codeOrDash(v string) string {
	if v == "" {
		return "—"
	}
	return "`" + v + "`"
}

func describe(s *Setting) string {
	d := s.Documentation()
	if len(s.Enum) > 0 {
		d += " One of: " + strings.Join(s.Enum, ", ") + "."
	}
	if s.Min != nil {
		d += fmt.Sprintf(" Minimum %d.", *s.Min)
	}
	if s.Max != nil {
		d += fmt.Sprintf(" Maximum %d.", *s.Max)
	}
	return strings.ReplaceAll(d, "|", "\\|")
}
