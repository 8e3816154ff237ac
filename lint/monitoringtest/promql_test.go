package monitoring_test

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// A small, deliberately strict PromQL reader: enough to check that an
// expression in alerts.yml or dashboard.json is balanced, calls only known
// functions, and selects only metrics and labels the library exports. It is
// not a parser; promtool (see monitoring/alerts.yml) is the real check.

// exprInfo is what an expression refers to.
type exprInfo struct {
	selectors []selector // metric selectors, in order
	grouping  []string   // labels of by (...) and without (...) clauses
	joining   []string   // labels of on (...), ignoring (...), group_left/right (...)
	vars      []string   // Grafana variables ($scope, ${datasource}, $__rate_interval)
}

type selector struct {
	metric string
	labels []string // label names of the matchers
}

// functions PromQL knows that these files may call (aggregations included).
var functions = map[string]bool{
	"abs": true, "absent": true, "absent_over_time": true, "avg": true, "avg_over_time": true,
	"bottomk": true, "ceil": true, "changes": true, "clamp": true, "clamp_max": true, "clamp_min": true,
	"count": true, "count_over_time": true, "count_values": true, "delta": true, "deriv": true,
	"floor": true, "group": true, "histogram_quantile": true, "idelta": true, "increase": true,
	"irate": true, "label_join": true, "label_replace": true, "last_over_time": true, "max": true,
	"max_over_time": true, "min": true, "min_over_time": true, "quantile": true,
	"quantile_over_time": true, "rate": true, "resets": true, "round": true, "scalar": true,
	"sort": true, "sort_desc": true, "stddev": true, "sum": true, "sum_over_time": true,
	"time": true, "timestamp": true, "topk": true, "vector": true,
}

// keywords that are not metric names.
var (
	groupingKeywords = map[string]bool{"by": true, "without": true}
	joiningKeywords  = map[string]bool{"on": true, "ignoring": true, "group_left": true, "group_right": true}
	otherKeywords    = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "atan2": true}
)

// analyze reads expr. allowVars permits Grafana variables ($name, ${name})
// outside strings, as dashboards use them in range selectors.
func analyze(expr string, allowVars bool) (exprInfo, error) {
	var info exprInfo
	if err := balanced(expr); err != nil {
		return info, err
	}
	r := []rune(expr)
	i := 0
	skipSpace := func() {
		for i < len(r) {
			switch {
			case unicode.IsSpace(r[i]):
				i++
			case r[i] == '#': // comment to end of line
				for i < len(r) && r[i] != '\n' {
					i++
				}
			default:
				return
			}
		}
	}
	readIdent := func() string {
		start := i
		for i < len(r) && (r[i] == '_' || r[i] == ':' || unicode.IsLetter(r[i]) || (i > start && unicode.IsDigit(r[i]))) {
			i++
		}
		return string(r[start:i])
	}
	readString := func() (string, error) {
		q := r[i]
		start := i
		i++
		for i < len(r) && r[i] != q {
			if r[i] == '\\' && q != '`' {
				i++
			}
			i++
		}
		if i >= len(r) {
			return "", fmt.Errorf("unterminated string at %d", start)
		}
		i++
		return string(r[start+1 : i-1]), nil
	}
	readVar := func() (string, error) {
		i++ // $
		if i < len(r) && r[i] == '{' {
			end := strings.IndexRune(string(r[i:]), '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ at %d", i)
			}
			name := string(r[i+1 : i+end])
			i += end + 1
			return name, nil
		}
		return readIdent(), nil
	}
	// labelList reads "(a, b, c)" after a grouping or joining keyword.
	// The list is optional after group_left and group_right.
	labelList := func(optional bool) ([]string, error) {
		skipSpace()
		if i >= len(r) || r[i] != '(' {
			if optional {
				return nil, nil
			}
			return nil, fmt.Errorf("expected ( at %d in %q", i, expr)
		}
		i++
		var out []string
		for {
			skipSpace()
			if i < len(r) && r[i] == ')' {
				i++
				return out, nil
			}
			name := readIdent()
			if name == "" {
				return nil, fmt.Errorf("expected a label name at %d in %q", i, expr)
			}
			out = append(out, name)
			skipSpace()
			if i < len(r) && r[i] == ',' {
				i++
			}
		}
	}
	// matchers reads "{a="x", b=~"y"}" and returns the label names.
	matchers := func() ([]string, error) {
		i++ // {
		var out []string
		for {
			skipSpace()
			if i < len(r) && r[i] == '}' {
				i++
				return out, nil
			}
			name := readIdent()
			if name == "" {
				return nil, fmt.Errorf("expected a label name at %d in %q", i, expr)
			}
			out = append(out, name)
			skipSpace()
			op := ""
			for i < len(r) && strings.ContainsRune("=!~", r[i]) {
				op += string(r[i])
				i++
			}
			if !slices.Contains([]string{"=", "!=", "=~", "!~"}, op) {
				return nil, fmt.Errorf("bad matcher operator %q for %s", op, name)
			}
			skipSpace()
			if i >= len(r) || !strings.ContainsRune("\"'`", r[i]) {
				return nil, fmt.Errorf("matcher %s%s wants a string", name, op)
			}
			if _, err := readString(); err != nil {
				return nil, err
			}
			skipSpace()
			if i < len(r) && r[i] == ',' {
				i++
			}
		}
	}

	for {
		skipSpace()
		if i >= len(r) {
			break
		}
		c := r[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := readString(); err != nil {
				return info, err
			}
		case c == '$':
			if !allowVars {
				return info, fmt.Errorf("variable outside a string at %d", i)
			}
			name, err := readVar()
			if err != nil {
				return info, err
			}
			info.vars = append(info.vars, name)
		case c == '[': // range or subquery: a duration or a variable
			end := strings.IndexRune(string(r[i:]), ']')
			inner := string(r[i+1 : i+end])
			for _, part := range strings.Split(inner, ":") {
				part = strings.TrimSpace(part)
				switch {
				case part == "" && strings.Contains(inner, ":"):
				case strings.HasPrefix(part, "$"):
					if !allowVars {
						return info, fmt.Errorf("variable %s in a range", part)
					}
					info.vars = append(info.vars, strings.Trim(part, "${}"))
				case !isDuration(part):
					return info, fmt.Errorf("bad range [%s]", inner)
				}
			}
			i += end + 1
		case c == '{':
			return info, fmt.Errorf("selector without a metric name at %d in %q", i, expr)
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(r) && unicode.IsDigit(r[i+1])):
			for i < len(r) && (unicode.IsDigit(r[i]) || unicode.IsLetter(r[i]) || r[i] == '.' ||
				((r[i] == '+' || r[i] == '-') && (r[i-1] == 'e' || r[i-1] == 'E'))) {
				i++
			}
		case c == '_' || c == ':' || unicode.IsLetter(c):
			name := readIdent()
			lower := strings.ToLower(name)
			switch {
			case groupingKeywords[lower]:
				labels, err := labelList(false)
				if err != nil {
					return info, err
				}
				info.grouping = append(info.grouping, labels...)
				continue
			case joiningKeywords[lower]:
				labels, err := labelList(strings.HasPrefix(lower, "group_"))
				if err != nil {
					return info, err
				}
				info.joining = append(info.joining, labels...)
				continue
			case otherKeywords[lower]:
				continue
			}
			skipSpace()
			// A call, or an aggregation with its grouping first: sum by (a) (…).
			save := i
			next := strings.ToLower(readIdent())
			i = save
			if (i < len(r) && r[i] == '(') || groupingKeywords[next] {
				if !functions[name] {
					return info, fmt.Errorf("unknown function %s", name)
				}
				continue
			}
			sel := selector{metric: name}
			if i < len(r) && r[i] == '{' {
				labels, err := matchers()
				if err != nil {
					return info, err
				}
				sel.labels = labels
			}
			info.selectors = append(info.selectors, sel)
		case strings.ContainsRune("()+-*/%^=!<>,", c):
			i++
		default:
			return info, fmt.Errorf("unexpected %q at %d in %q", c, i, expr)
		}
	}
	if len(info.selectors) == 0 {
		return info, fmt.Errorf("no metric selected in %q", expr)
	}
	return info, nil
}

// balanced checks (), [] and {} outside strings and comments.
func balanced(expr string) error {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	r := []rune(expr)
	for i := 0; i < len(r); i++ {
		switch c := r[i]; c {
		case '"', '\'', '`':
			j := i + 1
			for j < len(r) && r[j] != c {
				if r[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(r) {
				return fmt.Errorf("unterminated string in %q", expr)
			}
			i = j
		case '#':
			for i < len(r) && r[i] != '\n' {
				i++
			}
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("unbalanced %q at %d in %q", c, i, expr)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q in %q", stack[len(stack)-1], expr)
	}
	return nil
}

// isDuration reports whether s is a Prometheus duration such as 5m or 1h30m.
func isDuration(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 {
			return false
		}
		s = s[n:]
		unit := ""
		for _, u := range []string{"ms", "s", "m", "h", "d", "w", "y"} {
			if strings.HasPrefix(s, u) {
				unit = u
				break
			}
		}
		if unit == "" {
			return false
		}
		s = s[len(unit):]
	}
	return true
}
