package config

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the registry")

const referencePath = "../../docs/configuration.md"

// TestReferenceIsCurrent fails when docs/configuration.md no longer matches
// the settings in the code; `make docs` regenerates it.
func TestReferenceIsCurrent(t *testing.T) {
	want := ReferenceMarkdown()
	if *update {
		if err := os.WriteFile(referencePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/configuration.md is out of date: run `make docs`")
	}
}
