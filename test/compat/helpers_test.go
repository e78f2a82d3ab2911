package compat

import (
	"fmt"
	"sort"
	"strings"
)

// rec is a consumed record, in a client-neutral form.
type rec struct {
	key, value string
	headers    map[string]string
}

const perCodec = 10

// produced lists the records a client's produce-codecs scenario sends for
// the given codecs: key "<codec>-<i>", value "value <codec> <i> 안녕", header codec.
func produced(codecs []string) []rec {
	var out []rec
	for _, c := range codecs {
		for i := 0; i < perCodec; i++ {
			out = append(out, rec{key: fmt.Sprintf("%s-%d", c, i), value: fmt.Sprintf("value %s %d 안녕", c, i), headers: map[string]string{"codec": c}})
		}
	}
	return out
}

// sameRecords compares consumed records with the expected ones, ignoring order.
func sameRecords(got, want []rec) error {
	key := func(r rec) string {
		var hs []string
		for k, v := range r.headers {
			hs = append(hs, k+"="+v)
		}
		sort.Strings(hs)
		return r.key + "|" + r.value + "|" + strings.Join(hs, ",")
	}
	count := map[string]int{}
	for _, r := range want {
		count[key(r)]++
	}
	for _, r := range got {
		k := key(r)
		if count[k] == 0 {
			return fmt.Errorf("unexpected or duplicate record %q", k)
		}
		count[k]--
	}
	for k, n := range count {
		if n > 0 {
			return fmt.Errorf("record %q missing (got %d of %d records)", k, len(got), len(want))
		}
	}
	return nil
}
