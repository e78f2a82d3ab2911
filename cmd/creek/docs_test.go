package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentedCommandsParse checks every creek command line in the
// README and docs/ code blocks (shell sessions and systemd units) against
// the real command tree: the subcommand exists and each flag is known.
// Docs that name a removed or renamed flag fail here, not for a reader.
func TestDocumentedCommandsParse(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	checked := 0
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range shellLines(string(text)) {
			args := creekArgs(splitWords(line))
			for i, a := range args {
				if strings.HasPrefix(a, "$") {
					args[i] = "1" // a shell value ($!, $(pgrep ...)): any number or string parses
				}
			}
			if args == nil {
				continue
			}
			checked++
			root := newRootCommand()
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("%s: %q: no such creek command", filepath.Base(file), line)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %q: %v", filepath.Base(file), line, err)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d documented creek commands found; is the extraction broken?", checked)
	}
}

// shellLines returns the lines of fenced code blocks that hold commands
// (sh, bash and ini blocks; output and diagrams are text blocks), with backslash continuations joined.
func shellLines(markdown string) []string {
	var out []string
	open, commands, pending := false, false, ""
	for _, line := range strings.Split(markdown, "\n") {
		if fence, ok := strings.CutPrefix(line, "```"); ok {
			lang := strings.TrimSpace(fence)
			commands = !open && (lang == "sh" || lang == "bash" || lang == "ini")
			open = !open
			pending = ""
			continue
		}
		if !commands {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont + " "
			continue
		}
		out = append(out, pending+line)
		pending = ""
	}
	return out
}

// creekArgs returns the arguments of the first creek command in a command
// line: `creek`, `./creek`, `/usr/local/bin/creek` or `go run ./cmd/creek`
// at the start of the line (after `sudo`, environment assignments or
// `ExecStart=`) or after a pipe or `&&`, up to the next pipe, redirection
// or comment. It returns nil if the line does not run creek.
func creekArgs(words []string) []string {
	start := true // at a place where a command begins
	for i, w := range words {
		w = strings.TrimPrefix(w, "ExecStart=")
		switch {
		case w == "|" || w == "&&" || w == ";":
			start = true
			continue
		case !start:
			continue
		case w == "sudo" || w == "go" || w == "run" || (strings.Contains(w, "=") && !strings.HasPrefix(w, "-")):
			continue // still before the program
		}
		start = false
		if w != "creek" && !strings.HasSuffix(w, "/creek") {
			continue
		}
		var args []string
		for _, a := range words[i+1:] {
			if a == "|" || a == "&&" || a == ";" || strings.HasPrefix(a, "#") || strings.HasPrefix(a, ">") || strings.HasPrefix(a, "<") {
				break
			}
			args = append(args, a)
		}
		if len(args) == 0 {
			return nil
		}
		return args
	}
	return nil
}

// splitWords splits a shell line into words, honouring single and double
// quotes (enough for documentation, not a shell).
func splitWords(line string) []string {
	var (
		words []string
		cur   strings.Builder
		quote rune
		has   bool
		depth int // inside $( ... )
	)
	for i, r := range line {
		switch {
		case quote == 0 && r == '$' && strings.HasPrefix(line[i:], "$("):
			depth++
			cur.WriteRune(r)
			has = true
		case quote == 0 && depth > 0 && r == ')':
			depth--
			cur.WriteRune(r)
		case quote == 0 && depth > 0:
			cur.WriteRune(r)
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, has = r, true
		case r == ' ' || r == '\t':
			if has {
				words = append(words, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		words = append(words, cur.String())
	}
	return words
}
