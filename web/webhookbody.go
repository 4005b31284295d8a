package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Body templates: a destination's template is written by an admin and run
// for every event, in the server's process, so it runs within bounds. The
// language is text/template without its loops (range; template, define and
// block), which the events do not need (they hold no lists) and which are
// the only way a template's run can outgrow its text; every function that
// makes text counts what it makes against one budget; the body written is
// capped; and the run has a deadline, checked at each write and each call
// of a function. A template that breaks a bound is refused when it is added
// (it is tried on an example event) and fails its delivery, sending
// nothing, when a real event makes it break one.
//
// What is left: text/template cannot be interrupted, so a run past its
// deadline is abandoned in its goroutine and ends at its next write or
// call. Without loops, a run does a bounded amount of work between two of
// those (the template is at most maxTemplate characters), so it ends soon
// after; only a new way for a template to loop (a future text/template
// feature that checkNode does not know, which it then refuses as "not
// available") could change that.

// Bounds of a body template's run.
const (
	// maxBody is the longest body a template may write.
	maxBody = 64 << 10
	// maxTemplateText is how much text the template's functions (print,
	// printf, json, …) may make in all, the body's parts included.
	maxTemplateText = 256 << 10
	// maxPrintfWidth is the widest width or precision printf takes.
	maxPrintfWidth = 1000
	// bodyTimeout is how long a run may take.
	bodyTimeout = time.Second
)

// bodyError is a body template that cannot make a body: it does not
// parse, uses what is not allowed, fails on the event or breaks a bound.
// Trying again cannot help, so the delivery fails at once.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "the body template: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

var (
	errBodyTooLong = fmt.Errorf("the body would be longer than %d KiB", maxBody>>10)
	errTooMuchText = fmt.Errorf("its functions would make more than %d KiB of text", maxTemplateText>>10)
)

// renderBody makes the body of p with a destination's template, within
// the bounds. The template is parsed for each run, as its functions count
// what this run makes.
func renderBody(ctx context.Context, text string, p webhookPayload) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, bodyTimeout)
	defer cancel()
	run := &bodyRun{ctx: ctx, left: maxTemplateText}
	t, err := parseBodyTemplate(text, run.funcs())
	if err != nil {
		return nil, &bodyError{err}
	}
	body, err := executeBounded(ctx, t, p, maxBody)
	if err != nil && !errors.Is(err, context.Canceled) {
		err = &bodyError{err}
	}
	return body, err
}

// parseBodyTemplate reads a destination's body template and refuses what
// the language may not do here.
func parseBodyTemplate(text string, funcs template.FuncMap) (*template.Template, error) {
	t, err := template.New("body").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	for _, d := range t.Templates() {
		if d != t {
			return nil, errors.New("define and block are not available: write the body as one template")
		}
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	return t, checkNode(t.Tree.Root)
}

// executeBounded runs t on data into a buffer that takes at most max bytes,
// for as long as ctx lets it. text/template cannot be interrupted, so the
// run is in a goroutine whose writer (and whose functions, when they are
// a bodyRun's) fail once ctx is done: it is left behind at the deadline and
// stops at its next write or call.
func executeBounded(ctx context.Context, t *template.Template, data any, max int) ([]byte, error) {
	w := &boundedWriter{ctx: ctx, max: max}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("it failed: %v", v)
			}
		}()
		done <- t.Execute(w, data)
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return w.buf.Bytes(), nil
	case <-ctx.Done():
		return nil, ctxError(ctx)
	}
}

// ctxError says why ctx ended: the run's deadline, or the server stopping.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("it ran longer than %s", bodyTimeout)
	}
	return ctx.Err()
}

// boundedWriter keeps what a template writes, up to max bytes, until its
// context ends.
type boundedWriter struct {
	ctx context.Context
	max int
	buf bytes.Buffer
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.ctx.Err() != nil {
		return 0, ctxError(w.ctx)
	}
	if w.buf.Len()+len(p) > w.max {
		return 0, errBodyTooLong
	}
	return w.buf.Write(p)
}

// bodyRun is one run of a body template: the text its functions may still
// make, and the context that ends it.
type bodyRun struct {
	ctx  context.Context
	left int
}

// reserve refuses to make n more bytes of text when they would break the
// budget or the run is over; it is called before the text is made, so
// that nothing large is ever allocated.
func (r *bodyRun) reserve(n int) error {
	if r.ctx.Err() != nil {
		return ctxError(r.ctx)
	}
	if n < 0 || n > r.left {
		return errTooMuchText
	}
	return nil
}

// spend charges s to the budget.
func (r *bodyRun) spend(s string) (string, error) {
	if err := r.reserve(len(s)); err != nil {
		return "", err
	}
	r.left -= len(s)
	return s, nil
}

// escapeGrowth is the most an escaper (html, js, urlquery, json) makes of
// one byte: js writes < as \u003C.
const escapeGrowth = 6

// funcs are the functions a body template may call: json, and in place of
// text/template's builtins that make text, versions that count it.
func (r *bodyRun) funcs() template.FuncMap {
	escaper := func(escape func(...any) string) func(...any) (string, error) {
		return func(args ...any) (string, error) {
			if err := r.reserve(escapeGrowth * printSize(args)); err != nil {
				return "", err
			}
			return r.spend(escape(args...))
		}
	}
	return template.FuncMap{
		"json": func(v any) (string, error) {
			if s, ok := v.(string); ok {
				if err := r.reserve(escapeGrowth*len(s) + 2); err != nil {
					return "", err
				}
			} else if err := r.reserve(0); err != nil {
				return "", err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return "", err
			}
			return r.spend(string(b))
		},
		"print": func(args ...any) (string, error) {
			if err := r.reserve(printSize(args)); err != nil {
				return "", err
			}
			return r.spend(fmt.Sprint(args...))
		},
		"println": func(args ...any) (string, error) {
			if err := r.reserve(printSize(args) + 1); err != nil {
				return "", err
			}
			return r.spend(fmt.Sprintln(args...))
		},
		"printf": func(format string, args ...any) (string, error) {
			n, err := printfSize(format, args)
			if err != nil {
				return "", err
			}
			if err := r.reserve(n); err != nil {
				return "", err
			}
			return r.spend(fmt.Sprintf(format, args...))
		},
		"html":     escaper(template.HTMLEscaper),
		"js":       escaper(template.JSEscaper),
		"urlquery": escaper(template.URLQueryEscaper),
	}
}

// sizeOf is about how long a value prints: exactly for a string, the
// length of its printed form for the event's small values.
func sizeOf(v any) int {
	if s, ok := v.(string); ok {
		return len(s)
	}
	return len(fmt.Sprint(v)) + 64
}

// printSize bounds what print makes of args (their forms, and a space
// between each two).
func printSize(args []any) int {
	n := len(args)
	for _, a := range args {
		n += sizeOf(a)
	}
	return n
}

// printfSize bounds what printf makes of format and args: the format's
// text, and for each verb its width and precision and the longest
// argument escaped (%q, %x) at the most; refused are widths from the
// arguments (*) and those wider than maxPrintfWidth.
func printfSize(format string, args []any) (int, error) {
	longest, n := 0, len(format)
	for _, a := range args {
		s := sizeOf(a)
		longest = max(longest, s)
		n += escapeGrowth*s + 32 // unused arguments are printed too
	}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		widths := 0
	verb:
		for i++; i < len(format); i++ {
			switch c := format[i]; {
			case c == '*':
				return 0, errors.New("printf takes no widths from arguments (*)")
			case c >= '0' && c <= '9':
				w := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					if w = w*10 + int(format[i]-'0'); w > maxPrintfWidth {
						return 0, fmt.Errorf("printf takes widths and precisions up to %d", maxPrintfWidth)
					}
				}
				widths += w
				i--
			case strings.IndexByte("+-# .[]", c) < 0:
				break verb
			}
		}
		n += widths + escapeGrowth*longest + 64
	}
	return n, nil
}

// bodyFuncNames are the functions a body template may call by name: the
// counted ones above and text/template's builtins that make no text
// (call is left out: it calls what the data holds).
var bodyFuncNames = []string{"json", "print", "printf", "println", "html", "js", "urlquery",
	"and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge"}

// timeMethods are the methods of the event's times a template may call:
// ones without arguments, and Format with a quoted layout.
var timeMethods = []string{"Format", "Unix", "UnixMilli", "UTC", "Year", "Month", "Day", "Hour", "Minute", "Second",
	"Weekday", "YearDay", "IsZero"}

// allowedNames are the field and method names a template may use: the
// event's fields (.Event, .Case.URL, …) and timeMethods. Other methods
// are refused, as some make text without counting it.
var allowedNames = func() map[string]bool {
	names := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				names[f.Name] = true
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[webhookPayload]())
	for _, m := range timeMethods {
		names[m] = true
	}
	return names
}()

// checkNode refuses the parts of a template not allowed in a body
// template, naming the first it finds.
func checkNode(n parse.Node) error {
	switch n := n.(type) {
	case nil, *parse.TextNode, *parse.CommentNode, *parse.BoolNode, *parse.NumberNode, *parse.StringNode,
		*parse.NilNode, *parse.DotNode:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.ActionNode:
		return checkPipe(n.Pipe)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode)
	case *parse.PipeNode:
		return checkPipe(n)
	case *parse.RangeNode, *parse.BreakNode, *parse.ContinueNode:
		return errors.New("range is not available: an event has no lists to go through")
	case *parse.TemplateNode:
		return errors.New("template is not available: write the body as one template")
	case *parse.IdentifierNode:
		if !slices.Contains(bodyFuncNames, n.Ident) {
			return fmt.Errorf("%s is not available; the functions are %s", n.Ident, strings.Join(bodyFuncNames, ", "))
		}
		return nil
	case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode:
		return checkNames(n, false)
	}
	return fmt.Errorf("%s is not available", n)
}

func checkBranch(b *parse.BranchNode) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := checkNode(n); err != nil {
			return err
		}
	}
	return nil
}

// checkPipe checks each command of p; Format is allowed only as the first
// command, with one quoted layout: its text then grows with the
// template's, never with what another call made.
func checkPipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for i, cmd := range p.Cmds {
		for j, arg := range cmd.Args {
			var err error
			switch arg.(type) {
			case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode:
				literal := len(cmd.Args) == 2 && cmd.Args[1].Type() == parse.NodeString
				err = checkNames(arg, i == 0 && j == 0 && literal)
			default:
				err = checkNode(arg)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNames checks the names of a field chain (.Case.URL, $c.Host,
// (…).Format); formatOK says a Format at its end is called with one quoted
// layout.
func checkNames(n parse.Node, formatOK bool) error {
	var names []string
	switch n := n.(type) {
	case *parse.FieldNode:
		names = n.Ident
	case *parse.VariableNode:
		names = n.Ident[1:]
	case *parse.ChainNode:
		if err := checkNode(n.Node); err != nil {
			return err
		}
		names = n.Field
	}
	for i, name := range names {
		switch {
		case name == "Format" && (i != len(names)-1 || !formatOK):
			return errors.New(`Format takes one quoted layout and comes first, as in {{.At.Format "2006-01-02 15:04"}}`)
		case !allowedNames[name]:
			return fmt.Errorf("%s is not a field of the event (the event has .Event, .At, .Case with .Link, and .Incident)", name)
		}
	}
	return nil
}
