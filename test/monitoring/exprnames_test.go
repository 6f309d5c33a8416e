package monitoring

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// selector is a vector selector of a PromQL expression: a metric name,
// the label names its matchers use and its matchers.
type selector struct {
	name     string
	labels   []string
	matchers []matcher
}

// matcher is one label matcher of a selector: label, operator (= != =~ !~)
// and the value as written in the expression (unquoted).
type matcher struct {
	label, op, value string
}

// values returns the label values a positive matcher (= or =~) names: the
// value itself, or each alternative of a regular expression that is a plain
// alternation of literals ("a|b-c"). ok is false for negative matchers,
// Grafana variables and regular expressions beyond an alternation.
func (m matcher) values() ([]string, bool) {
	if strings.Contains(m.value, "$") || m.op == "!=" || m.op == "!~" {
		return nil, false
	}
	if m.op == "=" {
		return []string{m.value}, true
	}
	if strings.ContainsAny(m.value, `.*+?()[]{}^\`) {
		return nil, false
	}
	return strings.Split(m.value, "|"), true
}

// parseMatcher reads one `label op "value"` matcher.
func parseMatcher(part string) (matcher, bool) {
	part = strings.TrimSpace(part)
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if i := strings.Index(part, op); i > 0 {
			v := strings.TrimSpace(part[i+len(op):])
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'' || v[0] == '`') && v[len(v)-1] == v[0] {
				v = v[1 : len(v)-1]
			}
			return matcher{label: strings.TrimSpace(part[:i]), op: op, value: v}, true
		}
	}
	return matcher{}, false
}

// promqlWords are PromQL keywords, aggregation modifiers and set operators:
// identifiers that are not metric names.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "offset": true, "bool": true, "atan2": true,
	"inf": true, "nan": true,
}

// aggregationModifier starts the rest of "sum by (l) (...)" after "sum".
var aggregationModifier = regexp.MustCompile(`^(by|without)\s*\(`)

// labelListWords are followed by a parenthesized list of label names.
var labelListWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// selectors lists the vector selectors of a PromQL expression: identifiers
// that are not keywords, not followed by "(" (functions and aggregations),
// outside strings, label lists, range brackets and matcher braces. Grafana
// variables ($x, ${x}) are skipped. It is a small lexer, not a parser: it
// finds names in expressions that Prometheus itself accepts (the end-to-end
// test runs each one), which is all it has to do.
func selectors(expr string) ([]selector, error) {
	var out []selector
	isStart := func(c byte) bool { return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || '0' <= c && c <= '9' }
	skipSpace := func(i int) int {
		for i < len(expr) && strings.IndexByte(" \t\n\r", expr[i]) >= 0 {
			i++
		}
		return i
	}
	// closing returns the index after the bracket closing the one at i, skipping strings.
	// skipString returns the index after the string literal starting at i.
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d in %q", i, expr)
	}
	closing := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; c {
			case '"', '\'', '`':
				k, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = k - 1
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c at %d in %q", open, i, expr)
	}
	// matcherLabels returns the label names of a {...} matcher list.
	matcherLabels := func(body string) []string {
		var ls []string
		for _, part := range splitMatchers(body) {
			part = strings.TrimSpace(part)
			end := 0
			for end < len(part) && isPart(part[end]) {
				end++
			}
			if end > 0 {
				ls = append(ls, part[:end])
			}
		}
		return ls
	}
	parens := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '(' || c == ')':
			if c == '(' {
				parens++
			} else if parens--; parens < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d in %q", i, expr)
			}
			i++
		case c == '[':
			j, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			// A selector without a name: {__name__="x"} is not used here.
			j, err := closing(i, '{', '}')
			if err != nil {
				return nil, err
			}
			if strings.Contains(expr[i:j], "__name__") {
				return nil, fmt.Errorf("selector by __name__ in %q: name the metric", expr)
			}
			i = j
		case c == '$':
			i++
			if i < len(expr) && expr[i] == '{' {
				j, err := closing(i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = j
				continue
			}
			for i < len(expr) && isPart(expr[i]) {
				i++
			}
		case '0' <= c && c <= '9' || c == '.':
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.' || expr[i] == '+' && (expr[i-1] == 'e' || expr[i-1] == 'E')) {
				i++
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := skipSpace(j)
			switch {
			case labelListWords[word] && k < len(expr) && expr[k] == '(':
				end, err := closing(k, '(', ')')
				if err != nil {
					return nil, err
				}
				i = end
			case promqlWords[strings.ToLower(word)]:
				i = j
			case k < len(expr) && expr[k] == '(':
				i = j // a function or aggregation
			case aggregationModifier.MatchString(expr[k:]):
				i = j // an aggregation with its modifier first: sum by (l) (...)
			default:
				s := selector{name: word}
				i = j
				if k < len(expr) && expr[k] == '{' {
					end, err := closing(k, '{', '}')
					if err != nil {
						return nil, err
					}
					s.labels = matcherLabels(expr[k+1 : end-1])
					for _, part := range splitMatchers(expr[k+1 : end-1]) {
						if m, ok := parseMatcher(part); ok {
							s.matchers = append(s.matchers, m)
						}
					}
					i = end
				}
				out = append(out, s)
			}
		default:
			i++
		}
	}
	if parens != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return out, nil
}

// splitMatchers splits a matcher list at commas outside quoted values.
func splitMatchers(body string) []string {
	var parts []string
	start, quote := 0, byte(0)
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == ',':
			parts = append(parts, body[start:i])
			start = i + 1
		}
	}
	return append(parts, body[start:])
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		expr string
		want []string // name, or name{label,label}
	}{
		{`up == 0`, []string{"up"}},
		{`sum by (job, instance) (rate(kms_responder_requests_total{result="activated", application=~"$app"}[$__rate_interval]))`,
			[]string{"kms_responder_requests_total{result,application}"}},
		{`a_total unless a_total offset 15m or increase(b:rec:rate5m{x="a,b}c"}[10m]) > 3`,
			[]string{"a_total", "a_total", "b:rec:rate5m{x}"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))) * 1e3 + 2.5e-1`, []string{"h_bucket"}},
		{`time() - kmsdns_audit_last_run_timestamp_seconds > 2 * 86400`, []string{"kmsdns_audit_last_run_timestamp_seconds"}},
		{`x < on (job, instance, application) group_right y`, []string{"x", "y"}},
		{`label_replace(m{l="v"}, "dst", "$1", "src", "(.*)")`, []string{"m{l}"}},
		{`count(${datasource_metric}) and bool z`, []string{"z"}},
	}
	for _, tc := range tests {
		sels, err := selectors(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		var got []string
		for _, s := range sels {
			n := s.name
			if len(s.labels) > 0 {
				n += "{" + strings.Join(s.labels, ",") + "}"
			}
			got = append(got, n)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("selectors(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
	sels, err := selectors(`sum(m{class=~"rogue|rogue-dead", domain!="x", zone=~"$zone", job="node"}) > 0`)
	if err != nil || len(sels) != 1 {
		t.Fatalf("matchers: %v %v", sels, err)
	}
	var vals []string
	for _, m := range sels[0].matchers {
		if v, ok := m.values(); ok {
			vals = append(vals, m.label+":"+strings.Join(v, ","))
		}
	}
	if got := strings.Join(vals, " "); got != "class:rogue,rogue-dead job:node" {
		t.Errorf("matcher values %q", got)
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b}`, `{__name__="x"}`} {
		if _, err := selectors(bad); err == nil {
			t.Errorf("selectors(%s) accepted a malformed expression", bad)
		}
	}
}
