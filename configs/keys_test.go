package configs

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite configs/trustd.example.yaml and docs/OPERATIONS.md's key table from keyTable")

// TestKeyTable: every Config field has exactly one key and every key one
// field, and buildKeys names the mistakes a table can hold.
func TestKeyTable(t *testing.T) {
	if _, err := buildKeys(keyTable); err != nil {
		t.Fatalf("keyTable: %v", err)
	}
	at := func(name string) int { // keys[i] is keyTable[i], named
		i := slices.IndexFunc(keys, func(k key) bool { return k.name == name })
		if i < 0 {
			t.Fatalf("no key %s", name)
		}
		return i
	}
	logFormat := at("log.format")
	withFlag := func(k key, f string) key { k.flag = f; return k }
	for _, tc := range []struct {
		name  string
		table []key
		want  string
	}{
		{"a field without a key", slices.Delete(slices.Clone(keyTable), logFormat, logFormat+1), "Config field log.format has no entry"},
		{"a field with two keys", append(slices.Clone(keyTable), keyTable[logFormat]), "log.format is listed twice"},
		{"a flag twice", append(slices.Delete(slices.Clone(keyTable), logFormat, logFormat+1), withFlag(keyTable[logFormat], "log-level")),
			"flag --log-level sets both log.level and log.format"},
		{"a flag of a type without flags", append(slices.Delete(slices.Clone(keyTable), logFormat, logFormat+1), withFlag(keyTable[logFormat], "log-format")), ""},
		{"a section apart", append(slices.Delete(slices.Clone(keyTable), at("data_dir"), at("data_dir")+1), keyTable[at("data_dir")]),
			`data_dir is apart from the other keys of section ""`},
		{"a secret that is no string", slices.Replace(slices.Clone(keyTable), at("raft.nonvoter"), at("raft.nonvoter")+1, keyTable[at("raft.nonvoter")].redacted()),
			"raft.nonvoter: only a string can be a secret"},
		{"a pointer at no leaf field", append(slices.Clone(keyTable), keyOf(func(c *Config) *LogConfig { return &c.Log }, LogConfig{}, "", "the log section")),
			"points at no leaf field of Config"},
	} {
		_, err := buildKeys(tc.table)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, errKeyTable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// layerValue is a value of type typ for layer 1 (file), 2 (environment)
// or 3 (flag) that differs from the layer below it (0 is the default): as
// text for the file, the environment and a flag, and as the key's value.
func layerValue(typ reflect.Type, def any, layer int) (text string, value any) {
	switch typ {
	case reflect.TypeFor[string]():
		s := fmt.Sprintf("layer%d", layer)
		return s, s
	case reflect.TypeFor[[]string]():
		s := fmt.Sprintf("/layer%d", layer)
		return s, []string{s}
	case reflect.TypeFor[bool]():
		b := def.(bool) != (layer%2 == 1)
		return fmt.Sprint(b), b
	case reflect.TypeFor[int]():
		return fmt.Sprint(100 + layer), 100 + layer
	case reflect.TypeFor[int64]():
		return fmt.Sprint(100 + layer), int64(100 + layer)
	case reflect.TypeFor[uint64]():
		return fmt.Sprint(100 + layer), uint64(100 + layer)
	case reflect.TypeFor[float64]():
		return fmt.Sprint(100.5 + float64(layer)), 100.5 + float64(layer)
	case reflect.TypeFor[time.Duration]():
		d := time.Duration(100+layer) * time.Second
		return d.String(), d
	}
	panic("no layer values for " + typ.String())
}

// TestPrecedenceEveryKey pins flag > env > file > default for every key:
// each layer sets every key it can to a value of its own, and the value
// read is the one of the highest layer that set it.
func TestPrecedenceEveryKey(t *testing.T) {
	d := Default()
	type layers struct{ file, env, flag bool }
	for _, tc := range []layers{{}, {file: true}, {env: true}, {flag: true}, {file: true, env: true}, {file: true, flag: true}, {env: true, flag: true}, {true, true, true}} {
		t.Run(fmt.Sprintf("file=%v,env=%v,flag=%v", tc.file, tc.env, tc.flag), func(t *testing.T) {
			doc := map[string]any{}
			var environ, args []string
			for _, k := range keys {
				typ := reflect.TypeOf(k.get(&d))
				if tc.file {
					_, v := layerValue(typ, k.get(&d), 1)
					if dur, ok := v.(time.Duration); ok {
						v = dur.String()
					}
					m := doc
					parts := strings.Split(k.name, ".")
					for _, p := range parts[:len(parts)-1] {
						if m[p] == nil {
							m[p] = map[string]any{}
						}
						m = m[p].(map[string]any)
					}
					m[parts[len(parts)-1]] = v
				}
				if tc.env {
					s, _ := layerValue(typ, k.get(&d), 2)
					t.Setenv(k.env, s)
					environ = append(environ, k.env+"="+s)
				}
				if tc.flag && k.flag != "" {
					s, _ := layerValue(typ, k.get(&d), 3)
					args = append(args, "--"+k.flag+"="+s)
				}
			}
			if tc.file {
				b, err := yaml.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", writeFile(t, string(b)))
			}
			c, err := load(mustFlags(t, args...), environ)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				want := k.get(&d)
				for layer, on := range []bool{tc.file, tc.env, tc.flag && k.flag != ""} {
					if on {
						_, want = layerValue(reflect.TypeOf(want), k.get(&d), layer+1)
					}
				}
				// A list read from nowhere is nil or empty; both print [].
				if got := k.get(c); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", k.name, got, want)
				}
			}
		})
	}
}

// TestDefaultOwnsItsLists: a Config from Default or Load shares no list
// with another, so changing one's p2p.listen changes no default.
func TestDefaultOwnsItsLists(t *testing.T) {
	a := Default()
	a.P2P.Listen[0] = "/changed"
	c, err := Load(mustFlags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.P2P.Listen[1] = "/changed"
	if d := Default(); d.P2P.Listen[0] == "/changed" || d.P2P.Listen[1] == "/changed" {
		t.Fatalf("the default p2p.listen changed with a Config's: %v", d.P2P.Listen)
	}
}

func TestRedactedMasksSecrets(t *testing.T) {
	c := Default()
	c.Admin.Token = "s3cret"
	if r := c.Redacted(); r.Admin.Token != "<redacted>" || c.Admin.Token != "s3cret" {
		t.Fatalf("Redacted: token %q, original %q", r.Admin.Token, c.Admin.Token)
	}
	if c.Admin.Token = ""; c.Redacted().Admin.Token != "" {
		t.Fatal("an empty token is shown as set")
	}
}

// The key table in docs/OPERATIONS.md lies between these lines.
const (
	referenceBegin = "<!-- configuration keys: generated from configs/keys.go by go test ./configs -run TestGeneratedDocs -update; do not edit -->\n"
	referenceEnd   = "<!-- end of configuration keys -->\n"
)

// TestGeneratedDocs: configs/trustd.example.yaml and the key table of
// docs/OPERATIONS.md are what keyTable says, so neither can drift from the
// keys. With -update it rewrites them.
func TestGeneratedDocs(t *testing.T) {
	check := func(file, got, want string) {
		t.Helper()
		if got == want {
			return
		}
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end)"
		}
		t.Errorf("%s differs from keyTable from its line %d on: has %q, keyTable gives %q; run go test ./configs -run TestGeneratedDocs -update",
			file, i+1, line(gl), line(wl))
	}
	write := func(file, body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	example, err := os.ReadFile("trustd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		write("trustd.example.yaml", Example())
	} else {
		check("configs/trustd.example.yaml", string(example), Example())
	}

	const ops = "../docs/OPERATIONS.md"
	b, err := os.ReadFile(ops)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(b), referenceBegin)
	table, after, ok2 := strings.Cut(rest, referenceEnd)
	if !ok || !ok2 {
		t.Fatalf("docs/OPERATIONS.md has no key table between %q and %q", referenceBegin, referenceEnd)
	}
	if *update {
		write(ops, before+referenceBegin+Reference()+referenceEnd+after)
	} else {
		check("docs/OPERATIONS.md", table, Reference())
	}
}

// TestExampleFilesUseKnownKeys: every example file in configs/ names only
// keys of keyTable, with values of their kinds (the cluster node's genesis
// path does not exist here, so it is read without Validate).
func TestExampleFilesUseKnownKeys(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("example files: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := load(mustFlags(t, "--config", f), nil); err != nil {
			t.Errorf("configs/%s: %v", f, err)
		}
	}
}
