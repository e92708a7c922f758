package configs

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// sectionDocs says more about a section than its keys' lines do, above
// the section in the example file.
var sectionDocs = map[string]string{
	"http.limits": "Per-client write limits (POST /v1/operations): a token bucket for each client address " +
		"(the TCP peer's; behind a proxy, the proxy's; an IPv6 /64 counts as one) and each signer DID, " +
		"refilled at the rate (writes per second) up to the burst. A refused write gets 429 with Retry-After " +
		"and counts in trustd_http_writes_limited_total. These defaults are generous, so development and " +
		"trustbench are never limited: set your own in production (docs/OPERATIONS.md, Limits).",
}

// exampleHeader opens the example file.
const exampleHeader = `# trustd configuration. Every key is optional; the values shown are the
# defaults. Precedence: flag > environment (TRUSTD_<SECTION>_<KEY>, e.g.
# TRUSTD_HTTP_ADDR) > this file > default. Unknown keys are errors. Each
# key's comment ends with its environment variable and flag.
#
#   trustd --config configs/trustd.example.yaml
#
# Generated from keyTable in configs/keys.go (trustd config example prints
# it); after changing a key run: go test ./configs -run TestGeneratedDocs -update
`

// commentWidth is the column the example file's comments wrap at.
const commentWidth = 76

// Example returns configs/trustd.example.yaml: every key at its default,
// with its documentation, environment variable and flag.
func Example() string {
	var b strings.Builder
	b.WriteString(exampleHeader)
	d := Default()
	var open []string // the sections the previous key was in
	for _, k := range keys {
		parts := strings.Split(k.name, ".")
		secs := parts[:len(parts)-1]
		same := 0
		for same < len(open) && same < len(secs) && open[same] == secs[same] {
			same++
		}
		for i := same; i < len(secs); i++ {
			indent := strings.Repeat("  ", i)
			if i == 0 {
				b.WriteString("\n")
			}
			if doc := sectionDocs[strings.Join(secs[:i+1], ".")]; doc != "" {
				writeComment(&b, indent, sentence(doc))
			}
			fmt.Fprintf(&b, "%s%s:\n", indent, secs[i])
		}
		open = secs
		indent := strings.Repeat("  ", len(secs))
		if len(secs) == 0 {
			b.WriteString("\n")
		}
		where := k.env
		if k.flag != "" {
			where += ", --" + k.flag
		}
		writeComment(&b, indent, sentence(k.doc)+" ("+where+")")
		val := yamlValue(k.get(&d), indent)
		if !strings.HasPrefix(val, "\n") {
			val = " " + val
		}
		fmt.Fprintf(&b, "%s%s:%s\n", indent, parts[len(parts)-1], val)
	}
	return b.String()
}

// Reference returns the Markdown table of every key: its environment
// variable, flag, default and documentation (docs/OPERATIONS.md holds it).
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | environment | flag | default | |\n|---|---|---|---|---|\n")
	d := Default()
	for _, k := range keys {
		flag := ""
		if k.flag != "" {
			flag = "`--" + k.flag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s |\n", k.name, k.env, flag, inlineValue(k.get(&d)),
			markdownEscaper.Replace(k.doc))
	}
	return b.String()
}

// markdownEscaper keeps a documentation line plain text in a Markdown
// table cell: "|" ends a cell and "<" may open an HTML tag.
var markdownEscaper = strings.NewReplacer("|", `\|`, "<", `\<`)

// sentence makes a documentation line a sentence: a capital first letter
// and a full stop.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// writeComment writes text as YAML comment lines at indent, wrapped at
// commentWidth.
func writeComment(b *strings.Builder, indent, text string) {
	line := indent + "#"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > commentWidth && line != indent+"#" {
			b.WriteString(line + "\n")
			line = indent + "#"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}

// yamlValue formats a default as the example file writes it; a list goes
// on lines of its own below the key, at indent.
func yamlValue(v any, indent string) string {
	switch v := v.(type) {
	case []string:
		if len(v) == 0 {
			return "[]"
		}
		var b strings.Builder
		for _, s := range v {
			fmt.Fprintf(&b, "\n%s  - %s", indent, yamlScalar(s))
		}
		return b.String()
	case string:
		return yamlScalar(v)
	}
	return inlineValue(v)
}

// inlineValue formats a default on one line.
func inlineValue(v any) string {
	switch v := v.(type) {
	case time.Duration:
		return shortDuration(v)
	case []string:
		return "[" + strings.Join(v, ", ") + "]"
	case string:
		return yamlScalar(v)
	}
	if k := reflect.TypeOf(v).Kind(); k == reflect.Float32 || k == reflect.Float64 {
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprint(v)
}

// yamlScalar formats a string as a YAML scalar, quoted only when it must be.
func yamlScalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return strings.TrimSuffix(string(out), "\n")
}

// shortDuration writes d as time.Duration.String does, without the zero
// units it ends in: 2m rather than 2m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
