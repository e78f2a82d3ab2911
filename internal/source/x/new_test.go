package x

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// newX builds the x source from raw option values, through the registry
// as creek does.
func newX(t *testing.T, raw map[string]pipeline.Raw) (pipeline.Source, error) {
	t.Helper()
	p := mustLookup(t)
	v, err := p.Bind(raw, func(line int) string { return fmt.Sprintf("test.yaml:%d", line) })
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	return p.NewSource(v, pipeline.Env{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: &pipeline.Stats{}})
}

// bindX is newX with flag-like values, failing the test on an error.
func bindX(t *testing.T, flags map[string]string) pipeline.Source {
	t.Helper()
	raw := map[string]pipeline.Raw{}
	for k, v := range flags {
		raw[k] = pipeline.Raw{Flag: []string{v}}
	}
	s, err := newX(t, raw)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// clearEnv unsets the environment variables the x source reads.
func clearEnv(t *testing.T) {
	for _, o := range mustLookup(t).Options {
		for _, env := range o.Env {
			t.Setenv(env, "")
		}
	}
}

func mustLookup(t *testing.T) *pipeline.Plugin {
	t.Helper()
	p, err := pipeline.LookupSource("x")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRefusesMissingToken(t *testing.T) {
	clearEnv(t)
	_, err := newX(t, map[string]pipeline.Raw{"rules": {Flag: []string{"kafka"}}})
	if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "X_BEARER_TOKEN") {
		t.Fatalf("New without a token: %v, want the X_BEARER_TOKEN message", err)
	}
	_, err = newX(t, map[string]pipeline.Raw{"rules": {Flag: []string{"kafka"}}, "bearer-token": {Flag: []string{"  "}}})
	if !errors.Is(err, ErrNoToken) {
		t.Fatalf("New with a blank token: %v", err)
	}
}

func TestNewRefusesFilterWithoutRules(t *testing.T) {
	clearEnv(t)
	_, err := newX(t, map[string]pipeline.Raw{"bearer-token": {Flag: []string{testToken}}})
	if err == nil || !strings.Contains(err.Error(), "--x-rule") {
		t.Fatalf("filter stream without rules: %v, want an error naming --x-rule", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("the error shows the token")
	}
	// --x-keep-rules uses the rules already on the stream; sample needs none.
	bindX(t, map[string]string{"bearer-token": testToken, "keep-rules": "true"})
	bindX(t, map[string]string{"bearer-token": testToken, "stream": "sample"})
}

func TestNewTakesTokenFromEnvironmentAndRulesFromYAML(t *testing.T) {
	clearEnv(t)
	t.Setenv("TWITTER_BEARER_TOKEN", "from-env")
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("- kafka lang:ko\n- {value: '\"data pipeline\"', tag: pipeline}\n"), &node); err != nil {
		t.Fatal(err)
	}
	src, err := newX(t, map[string]pipeline.Raw{"rules": {Node: node.Content[0]}})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Source)
	if s.Token != "from-env" || s.Sample || s.APIURL != "https://api.x.com" || s.DedupWindow != 10000 {
		t.Errorf("source %+v", s)
	}
	want := []Rule{{Value: "kafka lang:ko"}, {Value: `"data pipeline"`, Tag: "pipeline"}}
	if !slices.Equal(s.Rules, want) {
		t.Errorf("rules %+v, want %+v", s.Rules, want)
	}
}
