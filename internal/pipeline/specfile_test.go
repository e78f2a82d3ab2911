package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creek-pipeline/creek/internal/config"
)

// Test plugins with every option type, registered under names no real
// plugin has.
func init() {
	opts := []Option{
		{Name: "path", Type: TypeString, Default: "out.txt", Doc: "where"},
		{Name: "count", Type: TypeInt, Default: "0", Doc: "how many"},
		{Name: "follow", Type: TypeBool, Default: "false", Doc: "keep going"},
		{Name: "every", Type: TypeDuration, Default: "1s", Doc: "how often"},
		{Name: "tags", Type: TypeStrings, Doc: "labels"},
	}
	RegisterSource(Plugin{Name: "spec-test-in", Doc: "test source", Options: opts,
		NewSource: func(v *Values, env Env) (Source, error) { return &listSource{l: newLedger()}, nil }})
	RegisterSink(Plugin{Name: "spec-test-out", Doc: "test sink", Options: opts,
		NewSink: func(v *Values, env Env) (Sink, error) { return &gateSink{}, nil }})
}

func specsFrom(t *testing.T, yaml string) ([]*Spec, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipes.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return SpecsFromFile(f)
}

func TestSpecFileBuildsSeveralPipelines(t *testing.T) {
	specs, err := specsFrom(t, `
pipelines:
  - name: first
    input:
      spec-test-in:
        count: 3
        follow: true
        every: 250ms
        tags: [a, b]
    output:
      spec-test-out:
        path: /tmp/x
  - input:
      spec-test-in: {}
    output:
      spec-test-out: {}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Name != "first" || specs[1].Name != "pipeline-2" {
		t.Fatalf("specs %+v", specs)
	}
	v := specs[0].SourceOpts
	if v.Int("count") != 3 || !v.Bool("follow") || v.Duration("every").Milliseconds() != 250 || strings.Join(v.Strings("tags"), ",") != "a,b" {
		t.Fatalf("options count=%d follow=%v every=%s tags=%v", v.Int("count"), v.Bool("follow"), v.Duration("every"), v.Strings("tags"))
	}
	for _, s := range specs {
		p, err := s.Build(Env{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// Mistakes are reported at start with the file, the line, the key and
// what is allowed.
func TestSpecFileErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown option", "input:\n  spec-test-in:\n    colour: red\noutput:\n  spec-test-out: {}\n",
			[]string{"pipes.yaml:3", `"colour"`, "path, count, follow, every, tags"}},
		{"not a number", "input:\n  spec-test-in:\n    count: many\noutput:\n  spec-test-out: {}\n",
			[]string{"pipes.yaml:3", "count", `"many"`}},
		{"bad duration", "input:\n  spec-test-in:\n    every: soon\noutput:\n  spec-test-out: {}\n",
			[]string{"pipes.yaml:3", "every", `"soon"`}},
		{"bad bool", "input:\n  spec-test-in:\n    follow: perhaps\noutput:\n  spec-test-out: {}\n",
			[]string{"pipes.yaml:3", "follow", `"perhaps"`}},
		{"unknown source", "input:\n  nosuch: {}\noutput:\n  spec-test-out: {}\n",
			[]string{"pipes.yaml:2", `"nosuch"`, "spec-test-in"}},
		{"unknown sink", "input:\n  spec-test-in: {}\noutput:\n  consle: {}\n",
			[]string{"pipes.yaml:4", `"consle"`, "spec-test-out"}},
		{"unknown section", "inputs:\n  spec-test-in: {}\n",
			[]string{"pipes.yaml:1", `"inputs"`, "input, processors, output, dead-letter-topic, pipelines"}},
		{"input without output", "input:\n  spec-test-in: {}\n",
			[]string{"pipes.yaml", "output"}},
		{"duplicate names", "pipelines:\n  - name: a\n    input: {spec-test-in: {}}\n    output: {spec-test-out: {}}\n  - name: a\n    input: {spec-test-in: {}}\n    output: {spec-test-out: {}}\n",
			[]string{"pipes.yaml:5", `"a"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := specsFrom(t, tc.yaml)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
