package auth

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
)

// PrincipalMapper turns a client certificate's subject into a principal
// with Kafka's ssl.principal.mapping.rules: a comma-separated list of
// RULE:pattern/replacement/[L|U] and DEFAULT. The first rule whose pattern
// matches the whole distinguished name (in RFC 2253 form, such as
// "CN=alice,O=creek") gives the user name; DEFAULT keeps the name whole.
type PrincipalMapper struct {
	rules []mappingRule
}

type mappingRule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string
	toLower     bool
	toUpper     bool
}

// ParsePrincipalMapping parses ssl.principal.mapping.rules.
func ParsePrincipalMapping(s string) (*PrincipalMapper, error) {
	m := &PrincipalMapper{}
	rest := strings.TrimSpace(s)
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			m.rules = append(m.rules, mappingRule{isDefault: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			r, n, err := parseMappingRule(rest[len("RULE:"):])
			if err != nil {
				return nil, fmt.Errorf("ssl.principal.mapping.rules: %w", err)
			}
			m.rules = append(m.rules, r)
			rest = rest[len("RULE:")+n:]
		default:
			return nil, fmt.Errorf("ssl.principal.mapping.rules: %q: want RULE:pattern/replacement/[LU] or DEFAULT", rest)
		}
		rest = strings.TrimSpace(rest)
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("ssl.principal.mapping.rules: %q: rules are separated by commas", rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	if len(m.rules) == 0 {
		m.rules = []mappingRule{{isDefault: true}}
	}
	return m, nil
}

// parseMappingRule parses pattern/replacement/[LU] and returns how many
// bytes it used. A slash inside the pattern or replacement is written \/.
func parseMappingRule(s string) (mappingRule, int, error) {
	var fields []string
	var cur strings.Builder
	i := 0
	for ; i < len(s) && len(fields) < 2; i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '/':
			cur.WriteByte('/')
			i++
		case s[i] == '/':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	if len(fields) < 2 {
		return mappingRule{}, 0, fmt.Errorf("RULE:%s: want RULE:pattern/replacement/", s)
	}
	re, err := regexp.Compile("^(?:" + fields[0] + ")$")
	if err != nil {
		return mappingRule{}, 0, fmt.Errorf("RULE pattern %q: %v", fields[0], err)
	}
	r := mappingRule{pattern: re, replacement: fields[1]}
	if i < len(s) && (s[i] == 'L' || s[i] == 'U') {
		r.toLower, r.toUpper = s[i] == 'L', s[i] == 'U'
		i++
	}
	return r, i, nil
}

// Principal maps a certificate to User:name.
func (m *PrincipalMapper) Principal(cert *x509.Certificate) (string, error) {
	dn := cert.Subject.String()
	for _, r := range m.rules {
		if r.isDefault {
			return UserPrincipal(dn), nil
		}
		if !r.pattern.MatchString(dn) {
			continue
		}
		name := r.pattern.ReplaceAllString(dn, r.replacement)
		switch {
		case r.toLower:
			name = strings.ToLower(name)
		case r.toUpper:
			name = strings.ToUpper(name)
		}
		return UserPrincipal(name), nil
	}
	return "", fmt.Errorf("no ssl.principal.mapping.rules rule matches the certificate subject %q", dn)
}
