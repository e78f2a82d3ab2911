package s3sync

import (
	"strings"
	"unicode/utf8"
)

// Filter is aws cli's --exclude/--include: every file starts included, the
// rules are tried in the order given, and the last rule that matches
// decides. A pattern is matched against the file's path below the
// command's source or destination folder with Python's fnmatch: * and ?
// match any characters including /, [abc] and [!abc] one character from a
// set; there are no escapes. (aws cli joins the pattern to the folder and
// matches the whole path, which is the same thing; a pattern that starts
// with / is matched against the local file's absolute path.)
type Filter struct {
	rules []rule
}

type rule struct {
	include bool
	pattern string
}

// Exclude adds an --exclude rule.
func (f *Filter) Exclude(pattern string) { f.rules = append(f.rules, rule{false, pattern}) }

// Include adds an --include rule.
func (f *Filter) Include(pattern string) { f.rules = append(f.rules, rule{true, pattern}) }

// Included says whether the file at rel (slash-separated, below root) is
// synced; abs is its absolute path for a local file, "" for an object.
func (f *Filter) Included(rel, abs string) bool {
	in := true
	for _, r := range f.rules {
		name := rel
		pat := r.pattern
		if strings.HasPrefix(pat, "/") {
			if abs == "" {
				continue
			}
			name = abs
		}
		if fnmatch(name, pat) {
			in = r.include
		}
	}
	return in
}

// fnmatch matches name against pattern as Python's fnmatch.fnmatchcase.
func fnmatch(name, pattern string) bool {
	// Iterative matching with one backtrack point for the last *, as
	// Python's translated regular expression behaves for these patterns.
	n, p := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				_, size := utf8.DecodeRuneInString(name[n:])
				n += size
				p++
				continue
			case '[':
				if end, ok := classEnd(pattern, p); ok {
					r, size := utf8.DecodeRuneInString(name[n:])
					if matchClass(pattern[p+1:end], r) {
						n += size
						p = end + 1
						continue
					}
					break
				}
				if name[n] == '[' { // no closing ]: a literal [
					n++
					p++
					continue
				}
			default:
				if name[n] == c {
					n++
					p++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, size := utf8.DecodeRuneInString(name[starN:])
		starN += size
		n, p = starN, starP+1
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// classEnd finds the ] that closes the class opened at pattern[open]; as in
// Python, a ] right after [ or [! is part of the set.
func classEnd(pattern string, open int) (int, bool) {
	i := open + 1
	if i < len(pattern) && pattern[i] == '!' {
		i++
	}
	if i < len(pattern) && pattern[i] == ']' {
		i++
	}
	for ; i < len(pattern); i++ {
		if pattern[i] == ']' {
			return i, true
		}
	}
	return 0, false
}

func matchClass(set string, r rune) bool {
	negate := strings.HasPrefix(set, "!")
	if negate {
		set = set[1:]
	}
	found := false
	runes := []rune(set)
	for i := 0; i < len(runes); i++ {
		if i+2 < len(runes) && runes[i+1] == '-' {
			if runes[i] <= r && r <= runes[i+2] {
				found = true
			}
			i += 2
			continue
		}
		if runes[i] == r {
			found = true
		}
	}
	return found != negate
}
