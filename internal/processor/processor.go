// Package processor holds the pipeline's processors, Logstash's filter
// section: a filter keeps the records for which an expression is true, a
// map replaces each record's value by an expression's result, and the
// built-in tweet mapping turns an X API v2 post into the flat fields every
// store keeps (see tweet.go).
//
// Expressions are expr-lang/expr: Go-like syntax (==, and, or, not, in,
// contains, startsWith, matches, map and object literals, ?? for
// defaults), type-checked and compiled to bytecode once, then run by a
// reused virtual machine per record. expr rather than CEL: its syntax is
// closer to Logstash conditionals and Go, it works on plain Go values
// without declaring a schema, and a filter costs a few hundred
// nanoseconds. The record's fields are compiled into calls on the record
// (expr.go), so a path such as value.data.lang reads just that field from
// the JSON bytes.
package processor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

func init() {
	pipeline.RegisterProcessor(pipeline.ProcessorKind{
		Name: "filter",
		Doc:  "Keeps the records for which the expression is true and drops the others, such as `value.data.lang == \"ko\"`.",
		New:  func(arg string) (pipeline.Processor, error) { return NewFilter(arg) },
	})
	pipeline.RegisterProcessor(pipeline.ProcessorKind{
		Name: "map",
		Doc:  "Replaces each record's value by the expression's result (an object or list becomes JSON, a string stays text); `tweet` is the built-in mapping of an X API v2 post to id, created_at, lang, author_id, username, text, hashtags and raw.",
		New: func(arg string) (pipeline.Processor, error) {
			if strings.TrimSpace(arg) == "tweet" {
				return TweetMap{}, nil
			}
			return NewMap(arg)
		},
	})
}

// Error is a record that a processor could not process; Class names the
// kind for the dead-letter headers.
type Error struct {
	Class string
	Err   error
}

func (e *Error) Error() string      { return e.Err.Error() }
func (e *Error) Unwrap() error      { return e.Err }
func (e *Error) ErrorClass() string { return e.Class }

// Error classes.
const (
	ClassEval     = "creek.processor.EvalError"     // the expression failed on this record
	ClassNotJSON  = "creek.processor.NotJSON"       // the value is not JSON
	ClassNotTweet = "creek.processor.NotAnXPost"    // JSON, but not an X API v2 post
	ClassBadValue = "creek.processor.BadFieldValue" // a post's field holds what it cannot
)

// Filter keeps the records for which its condition is true.
type Filter struct{ p *program }

// NewFilter compiles a condition.
func NewFilter(source string) (*Filter, error) {
	p, err := compile(source, true)
	if err != nil {
		return nil, err
	}
	return &Filter{p: p}, nil
}

// Process evaluates the condition.
func (f *Filter) Process(m *pipeline.Message) (bool, error) {
	out, err := f.p.run(m)
	if err != nil {
		return false, &Error{Class: ClassEval, Err: fmt.Errorf("filter %s: %w", f.p.source, err)}
	}
	return out.(bool), nil // expr.AsBool checked it
}

// Stage names the filter.
func (f *Filter) Stage() string { return "filter " + f.p.source }

// Map replaces each record's value by its expression's result.
type Map struct{ p *program }

// NewMap compiles a mapping expression.
func NewMap(source string) (*Map, error) {
	p, err := compile(source, false)
	if err != nil {
		return nil, err
	}
	return &Map{p: p}, nil
}

// Process evaluates the expression and makes it the value: text as it is,
// bytes as they are, anything else as JSON.
func (mp *Map) Process(m *pipeline.Message) (bool, error) {
	out, err := mp.p.run(m)
	if err != nil {
		return false, &Error{Class: ClassEval, Err: fmt.Errorf("map %s: %w", mp.p.source, err)}
	}
	switch v := out.(type) {
	case string:
		m.Value = []byte(v)
	case []byte:
		m.Value = v
	case time.Time:
		m.Value = []byte(v.UTC().Format(time.RFC3339Nano))
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return false, &Error{Class: ClassEval, Err: fmt.Errorf("map %s: the result is not JSON: %w", mp.p.source, err)}
		}
		m.Value = bytes.TrimRight(buf.Bytes(), "\n")
	}
	return true, nil
}

// Stage names the mapping.
func (mp *Map) Stage() string { return "map " + mp.p.source }

// Shape: an expression's result has no shape a sink knows.
func (mp *Map) Shape() string { return "" }
