package broker

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// What keeps one client's requests from hurting the others, beside the
// size checks of the reader (conn.go): answers that always encode.
//
// A non-flexible version of a response encodes every string with an int16
// length. A longer string would wrap the length and corrupt the frame and
// every answer after it on that connection, so strings that clients supply
// are refused where they come in when they could not be echoed (topic
// names, group and transactional ids), and error messages are shortened.

// maxWireString is the longest string a non-flexible version can encode.
const maxWireString = math.MaxInt16

// maxErrorMessage bounds the error messages the broker sends; a message
// quoting a client's 32 KiB name says no more than its first part.
const maxErrorMessage = 4 << 10

// shorten cuts s to at most n bytes at a character boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// fitStrings is the last line of defence against an answer no client can
// decode: any string of a non-flexible response longer than its int16
// length allows is cut to fit. Error messages are shortened quietly; any
// other string means a request got past the checks where it came in, which
// is logged as the bug it is.
func (c *conn) fitStrings(p *pending) {
	fitValue(reflect.ValueOf(p.resp), func(path string, n int) {
		c.b.logger.Error("a response string is too long for its version and was cut; the request that stored it should have been refused",
			"api", kmsg.NameForKey(p.key), "version", p.version, "field", path, "bytes", n)
	})
}

// fitValue walks v (pointers, structs, slices) and cuts every settable
// string longer than maxWireString, reporting those not named ErrorMessage
// with their path. It skips whatever holds no strings and builds a path
// only for a string it cuts, so the fetch and produce answers of old
// clients pay little for it.
func fitValue(v reflect.Value, cut func(path string, n int)) {
	f := fitter{cut: cut}
	f.walk(v)
}

type fitter struct {
	path []string // the field names down to the value walked ("" for a slice element)
	cut  func(path string, n int)
}

func (f *fitter) walk(v reflect.Value) {
	if !holdsStrings(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			f.walk(v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if t.Field(i).IsExported() {
				f.path = append(f.path, "."+t.Field(i).Name)
				f.walk(v.Field(i))
				f.path = f.path[:len(f.path)-1]
			}
		}
	case reflect.Slice:
		f.path = append(f.path, "")
		for i := 0; i < v.Len(); i++ {
			f.walk(v.Index(i))
		}
		f.path = f.path[:len(f.path)-1]
	case reflect.String:
		if n := v.Len(); n > maxWireString && v.CanSet() {
			if len(f.path) == 0 || f.path[len(f.path)-1] != ".ErrorMessage" {
				f.cut(f.pathString(), n)
			}
			v.SetString(shorten(v.String(), maxWireString))
		}
	}
}

// pathString names the value walked, such as ".Groups[].Group".
func (f *fitter) pathString() string {
	var b strings.Builder
	for _, p := range f.path {
		if p == "" {
			p = "[]"
		}
		b.WriteString(p)
	}
	return b.String()
}

// stringHolders caches holdsStrings by type.
var stringHolders sync.Map

// holdsStrings reports whether a value of type t can contain a string.
func holdsStrings(t reflect.Type) bool {
	if v, ok := stringHolders.Load(t); ok {
		return v.(bool)
	}
	holds := typeHoldsStrings(t, map[reflect.Type]bool{})
	stringHolders.Store(t, holds)
	return holds
}

func typeHoldsStrings(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if visiting[t] {
		return false
	}
	visiting[t] = true
	switch t.Kind() {
	case reflect.String, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return typeHoldsStrings(t.Elem(), visiting)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() && typeHoldsStrings(t.Field(i).Type, visiting) {
				return true
			}
		}
	}
	return false
}

// answerOnce drops the repeated items of requests that describe what the
// broker keeps, so each thing is described once. A request can name a
// group of many members, or a topic's 35 documented configs, 10,000 times
// in a few hundred kilobytes; answering every copy would turn it into
// gigabytes. Clients match these answers by name, not by position.
func answerOnce(req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.DescribeGroupsRequest:
		r.Groups = uniqueBy(r.Groups)
	case *kmsg.ConsumerGroupDescribeRequest:
		r.Groups = uniqueBy(r.Groups)
	case *kmsg.ShareGroupDescribeRequest:
		r.GroupIDs = uniqueBy(r.GroupIDs)
	case *kmsg.DescribeTransactionsRequest:
		r.TransactionalIDs = uniqueBy(r.TransactionalIDs)
	case *kmsg.OffsetFetchRequest:
		r.Groups = uniqueBy(r.Groups)
	case *kmsg.DescribeShareGroupOffsetsRequest:
		r.Groups = uniqueBy(r.Groups)
	case *kmsg.DescribeConfigsRequest:
		r.Resources = uniqueBy(r.Resources)
	}
}

// uniqueBy keeps the first of items that are equal (as JSON, which follows
// pointers), in order; nil stays nil.
func uniqueBy[T any](items []T) []T {
	if len(items) < 2 {
		return items
	}
	seen := make(map[string]bool, len(items))
	out := items[:0:0]
	for _, it := range items {
		key, err := json.Marshal(it)
		if err != nil || !seen[string(key)] {
			seen[string(key)] = true
			out = append(out, it)
		}
	}
	return out
}
