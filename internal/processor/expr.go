package processor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/pipeline"
)

// An expression reads the record through these names. Each is compiled
// into a call on the record being evaluated (see fieldPatcher), so a
// record costs nothing for the fields an expression does not name, and a
// path into the value, such as value.data.lang, is read straight from the
// JSON bytes with gjson, without decoding the rest of the document.
var fieldNames = []string{"key", "value", "headers", "topic", "partition", "offset", "timestamp"}

// program is one compiled expression with the record it reads. It is not
// safe for concurrent use: the runner calls processors from one goroutine.
type program struct {
	source string
	prog   *vm.Program
	vm     vm.VM
	rec    record
}

// record is the message being evaluated and the value decoded whole,
// once, if the expression uses it whole.
type record struct {
	m       *pipeline.Message
	value   any
	decoded bool
}

// object tells whether the value may hold paths: a JSON object or array.
// A path reads its field straight from the bytes and does not check the
// rest of the document, which would cost more than the lookup (two
// thirds of a filter's time on a tweet); the tweet mapping checks the
// whole document.
func (r *record) object() bool {
	for _, c := range r.m.Value {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

// compile compiles an expression over a record. asBool makes it a
// condition.
func compile(source string, asBool bool) (*program, error) {
	p := &program{source: source}
	r := &p.rec
	opts := []expr.Option{
		expr.Env(map[string]any{}),
		expr.Patch(fieldPatcher{}),
		expr.Function("$key", func(...any) (any, error) {
			if r.m.Key == nil {
				return nil, nil
			}
			return string(r.m.Key), nil
		}),
		expr.Function("$value", func(...any) (any, error) {
			if !r.decoded {
				r.decoded = true
				if gjson.ValidBytes(r.m.Value) {
					r.value = gjson.ParseBytes(r.m.Value).Value()
				} else {
					r.value = string(r.m.Value)
				}
			}
			return r.value, nil
		}),
		expr.Function("$path", func(args ...any) (any, error) {
			if !r.object() {
				return nil, nil
			}
			return goValue(gjson.GetBytes(r.m.Value, args[0].(string))), nil
		}, new(func(string) any)),
		expr.Function("$headers", func(...any) (any, error) {
			h := make(map[string]any, len(r.m.Headers))
			for _, kv := range r.m.Headers {
				h[kv.Key] = string(kv.Value)
			}
			return h, nil
		}, new(func() map[string]any)),
		expr.Function("$header", func(args ...any) (any, error) {
			name := args[0].(string)
			for i := len(r.m.Headers) - 1; i >= 0; i-- { // the last one wins, as in the map
				if r.m.Headers[i].Key == name {
					return string(r.m.Headers[i].Value), nil
				}
			}
			return nil, nil
		}, new(func(string) any)),
		expr.Function("$topic", func(...any) (any, error) { return r.m.Topic, nil }, new(func() string)),
		expr.Function("$partition", func(...any) (any, error) { return int(r.m.Partition), nil }, new(func() int)),
		expr.Function("$offset", func(...any) (any, error) { return int(r.m.Offset), nil }, new(func() int)),
		expr.Function("$timestamp", func(...any) (any, error) { return r.m.Timestamp, nil }, new(func() time.Time)),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(source, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (the record is key, value, headers, topic, partition, offset, timestamp; see docs/processors.md)", err)
	}
	p.prog = prog
	return p, nil
}

// run evaluates the expression over m.
func (p *program) run(m *pipeline.Message) (any, error) {
	p.rec = record{m: m}
	out, err := p.vm.Run(p.prog, nil)
	p.rec.m = nil
	return out, err
}

// goValue turns a gjson result into what expressions compare: string,
// float64, bool, nil, or map[string]any and []any for objects and arrays.
func goValue(r gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Num
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		return r.Value()
	}
	return nil // null or missing
}

// fieldPatcher rewrites the record's names into calls: key into $key(),
// value.data.lang into $path("data.lang"), headers.rule into
// $header("rule"). The walk visits children first, so a chain of members
// is rewritten from its root outwards, one member at a time.
type fieldPatcher struct{}

func (fieldPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		for _, f := range fieldNames {
			if n.Value == f {
				ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "$" + f}})
				return
			}
		}
	case *ast.MemberNode:
		call, ok := n.Node.(*ast.CallNode)
		if !ok || n.Method {
			return
		}
		callee, _ := call.Callee.(*ast.IdentifierNode)
		if callee == nil {
			return
		}
		comp, ok := pathComponent(n.Property)
		if !ok {
			return
		}
		switch callee.Value {
		case "$value":
			ast.Patch(node, pathCall(comp))
		case "$path":
			ast.Patch(node, pathCall(call.Arguments[0].(*ast.StringNode).Value+"."+comp))
		case "$headers":
			if s, ok := n.Property.(*ast.StringNode); ok {
				ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "$header"}, Arguments: []ast.Node{&ast.StringNode{Value: s.Value}}})
			}
		}
	case *ast.ChainNode:
		// value?.data?.lang: a path call is already nil-safe.
		if c, ok := n.Node.(*ast.CallNode); ok {
			ast.Patch(node, c)
		}
	}
}

func pathCall(path string) *ast.CallNode {
	return &ast.CallNode{Callee: &ast.IdentifierNode{Value: "$path"}, Arguments: []ast.Node{&ast.StringNode{Value: path}}}
}

// pathComponent is a member's name as a gjson path component: a constant
// key, or a constant index from the start (gjson cannot count from the
// end, so value.list[-1] is left to expr).
func pathComponent(prop ast.Node) (string, bool) {
	switch p := prop.(type) {
	case *ast.StringNode:
		return gjson.Escape(p.Value), true
	case *ast.IntegerNode:
		if p.Value >= 0 {
			return strconv.Itoa(p.Value), true
		}
	}
	return "", false
}
