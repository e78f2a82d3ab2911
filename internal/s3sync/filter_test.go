package s3sync

import (
	"os/exec"
	"strings"
	"testing"
)

// fnmatch agrees with Python's fnmatch.fnmatchcase, which aws cli uses,
// on the patterns people write for sync.
func TestFnmatchAgreesWithPython(t *testing.T) {
	names := []string{".git/config", ".git/objects/ab/cd", "sub/.git/x", "a.txt", "sub/b.txt", "sub/deep/c.log", "[x].txt", "x].txt", "é.txt", "-", "ab", "a/b"}
	patterns := []string{".git/*", "*.txt", "*", "sub/*", "*/.git/*", "?.txt", "[abc].txt", "[!a].txt", "[]x].txt", "[x", "[a-c]*", "*.log", "sub/*/c.log", "a*b", "*a*b*", "?", "[!]].txt", "é*"}
	var want []string
	py := exec.Command("/usr/bin/python3", "-c", `
import fnmatch, sys
names, pats = sys.argv[1].split("\n"), sys.argv[2].split("\n")
for p in pats:
    print("".join("1" if fnmatch.fnmatchcase(n, p) else "0" for n in names))
`, strings.Join(names, "\n"), strings.Join(patterns, "\n"))
	out, err := py.Output()
	if err != nil {
		t.Skipf("no python3 to compare with: %v", err)
	}
	want = strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, p := range patterns {
		var got strings.Builder
		for _, n := range names {
			if fnmatch(n, p) {
				got.WriteByte('1')
			} else {
				got.WriteByte('0')
			}
		}
		if got.String() != want[i] {
			t.Errorf("pattern %q: got %s, Python %s (names %q)", p, got.String(), want[i], names)
		}
	}
}

// The last matching rule decides, as in aws cli.
func TestFilterOrder(t *testing.T) {
	var f Filter
	f.Exclude("*")
	f.Include("*.txt")
	f.Exclude("secret*")
	for name, want := range map[string]bool{"a.txt": true, "a.log": false, "secret.txt": false, "sub/secret.txt": true} {
		if got := f.Included(name, "/root/"+name); got != want {
			t.Errorf("%s: included %v, want %v", name, got, want)
		}
	}
}
