package metrics

import (
	"reflect"
	"strings"
	"sync"
)

// eachErrorCode calls fn with every non-zero error code of a kmsg answer
// (a struct whose ErrorCode fields sit at any depth of nested structs and
// slices). The fields to visit are worked out once per answer type, so a
// walk reads only the error codes and allocates nothing.
func eachErrorCode(resp any, fn func(int16)) {
	v := reflect.ValueOf(resp)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	if p := planFor(v.Type()); p != nil {
		p.walk(v, fn)
	}
}

// codePlan lists the fields of a struct type that hold error codes or
// lead to some.
type codePlan struct {
	codes  []int        // int16 fields named *ErrorCode
	nested []nestedPlan // structs, pointers to structs and slices of them
}

type nestedPlan struct {
	field int
	kind  reflect.Kind // Struct, Pointer or Slice
	elem  *codePlan
}

var plans sync.Map // reflect.Type → *codePlan (nil: no error codes)

func planFor(t reflect.Type) *codePlan {
	if p, ok := plans.Load(t); ok {
		return p.(*codePlan)
	}
	p := buildPlan(t, map[reflect.Type]bool{})
	plans.Store(t, p)
	return p
}

func buildPlan(t reflect.Type, seen map[reflect.Type]bool) *codePlan {
	if seen[t] {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	p := &codePlan{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Int16 && strings.HasSuffix(f.Name, "ErrorCode"):
			p.codes = append(p.codes, i)
		case ft.Kind() == reflect.Struct:
			if e := buildPlan(ft, seen); e != nil {
				p.nested = append(p.nested, nestedPlan{i, reflect.Struct, e})
			}
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			if e := buildPlan(ft.Elem(), seen); e != nil {
				p.nested = append(p.nested, nestedPlan{i, reflect.Pointer, e})
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if e := buildPlan(ft.Elem(), seen); e != nil {
				p.nested = append(p.nested, nestedPlan{i, reflect.Slice, e})
			}
		}
	}
	if len(p.codes) == 0 && len(p.nested) == 0 {
		return nil
	}
	return p
}

func (p *codePlan) walk(v reflect.Value, fn func(int16)) {
	for _, i := range p.codes {
		if c := int16(v.Field(i).Int()); c != 0 {
			fn(c)
		}
	}
	for _, n := range p.nested {
		f := v.Field(n.field)
		switch n.kind {
		case reflect.Struct:
			n.elem.walk(f, fn)
		case reflect.Pointer:
			if !f.IsNil() {
				n.elem.walk(f.Elem(), fn)
			}
		case reflect.Slice:
			for j := range f.Len() {
				n.elem.walk(f.Index(j), fn)
			}
		}
	}
}
