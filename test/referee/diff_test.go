package referee

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fields that must differ between two brokers, left out everywhere.
var mustDiffer = map[string]bool{
	"ThrottleMillis": true, // quotas and timing
	"ClusterID":      true,
	"Host":           true, "Port": true, // where each listens
	"TopicID":      true, // random per topic
	"ErrorMessage": true, // free text; the error code is what clients act on
	"UnknownTags":  true,
	"ProducerID":   true,                   // handed out by each broker
	"MemberID":     true, "LeaderID": true, // generated member ids
	"SessionID":     true,                    // fetch sessions
	"LogAppendTime": true, "Timestamp": true, // clocks
	"CurrentStateTimestamp":     true,
	"TransactionStartTimestamp": true,
	"LastTimestamp":             true,
	"AssignmentEpoch":           true,
	"Epoch":                     true, // share / consumer group epochs grow with every change
}

// normalizer adjusts a copy of an answer before it is compared.
type normalizer func(resp kmsg.Response)

// normalize returns a copy of resp (through its own encoding) with the
// fields that must differ zeroed, slices of named things sorted by name,
// and then each normalizer applied.
func normalize(resp kmsg.Response, opts ...normalizer) kmsg.Response {
	cp := kmsg.ResponseForKey(resp.Key())
	cp.SetVersion(resp.GetVersion())
	if err := cp.ReadFrom(resp.AppendTo(nil)); err != nil {
		panic(fmt.Sprintf("re-decode %T: %v", resp, err))
	}
	zeroFields(reflect.ValueOf(cp).Elem())
	for _, o := range opts {
		o(cp)
	}
	return cp
}

// zeroFields zeroes mustDiffer fields at every depth and sorts slices of
// structs by the fields that name their elements.
func zeroFields(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if mustDiffer[f.Name] {
				v.Field(i).SetZero()
				continue
			}
			zeroFields(v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			zeroFields(v.Index(i))
		}
		sortByName(v)
	case reflect.Pointer:
		if !v.IsNil() {
			zeroFields(v.Elem())
		}
	}
}

// nameFields are the fields by which a list of things is put in order.
var nameFields = []string{"Topic", "Name", "Group", "GroupID", "ResourceName", "Partition", "ApiKey", "ConfigName", "Key", "TransactionalID", "Path"}

func sortByName(v reflect.Value) {
	if v.Len() < 2 || v.Type().Elem().Kind() != reflect.Struct {
		return
	}
	key := func(i int) string {
		e := v.Index(i)
		var parts []string
		for _, n := range nameFields {
			if f := e.FieldByName(n); f.IsValid() {
				parts = append(parts, fmt.Sprintf("%020v", deref(f)))
			}
		}
		return strings.Join(parts, "/")
	}
	if key(0) == "" {
		return
	}
	keys := make([]string, v.Len())
	for i := range keys {
		keys[i] = key(i)
	}
	idx := make([]int, v.Len())
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	sorted := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
	for i, j := range idx {
		sorted.Index(i).Set(v.Index(j))
	}
	reflect.Copy(v, sorted)
}

func deref(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "<nil>"
		}
		v = v.Elem()
	}
	return v.Interface()
}

// difference is one field whose values differ.
type difference struct {
	path, creek, kafka string
}

// diff walks two values of the same type and lists the leaf fields that
// differ, by path ("Topics[0].Partitions[1].ErrorCode").
func diff(a, b any) []difference {
	var out []difference
	walkDiff(reflect.ValueOf(a), reflect.ValueOf(b), "", &out)
	return out
}

func walkDiff(a, b reflect.Value, path string, out *[]difference) {
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, difference{path, show(a), show(b)})
			}
			return
		}
		walkDiff(a.Elem(), b.Elem(), path, out)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !a.Type().Field(i).IsExported() || a.Type().Field(i).Name == "Version" {
				continue
			}
			walkDiff(a.Field(i), b.Field(i), join(path, a.Type().Field(i).Name), out)
		}
	case reflect.Slice:
		if a.Type().Elem().Kind() == reflect.Uint8 { // []byte
			if string(a.Bytes()) != string(b.Bytes()) || a.IsNil() != b.IsNil() {
				*out = append(*out, difference{path, show(a), show(b)})
			}
			return
		}
		if a.Len() != b.Len() {
			*out = append(*out, difference{path + ".len", fmt.Sprint(a.Len(), " ", show(a)), fmt.Sprint(b.Len(), " ", show(b))})
			return
		}
		for i := 0; i < a.Len(); i++ {
			walkDiff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, difference{path, show(a), show(b)})
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "null"
		}
	}
	s := fmt.Sprintf("%+v", v.Interface())
	if k := v.Kind(); k == reflect.Struct || k == reflect.Slice {
		if b, err := json.Marshal(v.Interface()); err == nil {
			s = string(b)
		}
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// pathPattern matches a difference's path with its indexes dropped
// ("Topics.Partitions.ErrorCode").
func pathPattern(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}
