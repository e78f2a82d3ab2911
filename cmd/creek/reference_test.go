package main

import (
	"flag"
	"os"
	"testing"
)

var updateReference = flag.Bool("update-reference", false, "rewrite docs/configuration.md")

// TestConfigurationReference fails when docs/configuration.md no longer
// matches the code; `make docs` regenerates it.
func TestConfigurationReference(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := configurationReference(newRootCommand())
	if *updateReference {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/configuration.md is out of date: run `make docs`")
	}
}
