package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// variable is one setting as envconfig itself sees it.
type variable struct {
	name, alt, typ, def string
	required            bool
}

// usage runs envconfig's usage template over every struct Load processes in spec, so that the
// tests see the keys envconfig really looks up.
func usage(t *testing.T, spec any, tmpl string) []string {
	t.Helper()
	var b bytes.Buffer
	for _, part := range parts(spec) {
		if err := envconfig.Usagef("", part, &b, "{{range .}}"+tmpl+"\n{{end}}"); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// variables lists the variables envconfig reads into spec.
func variables(t *testing.T, spec any) []variable {
	t.Helper()
	var out []variable
	for _, line := range usage(t, spec, "{{usage_key .}}\t{{.Alt}}\t{{.Field.Type}}\t{{usage_default .}}\t{{usage_required .}}") {
		c := strings.Split(line, "\t")
		out = append(out, variable{name: c[0], alt: c[1], typ: c[2], def: c[3], required: c[4] == "true"})
	}
	return out
}

// loaded runs Load on spec and prints what it put into each variable's field.
func loaded(t *testing.T, spec any) map[string]string {
	t.Helper()
	if err := Load(spec); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range usage(t, spec, "{{usage_key .}}\t{{.Field.Interface}}") {
		name, value, _ := strings.Cut(line, "\t")
		m[name] = value
	}
	return m
}

// valueFor is a value of v's type that differs from its default.
func valueFor(v variable) string {
	switch v.typ {
	case "bool":
		if v.def == "true" {
			return "false"
		}
		return "true"
	case "int", "int32", "int64":
		return "7"
	case "float64":
		return "0.25"
	case "time.Duration":
		return "7s"
	case "[]time.Duration":
		return "7s,8s"
	case "[]string":
		return "a,b"
	default:
		return "v-" + v.name
	}
}

// TestVariablesStayTheSame pins every variable the worker and the BFF read, with its type, its
// default, whether it is required, and what Load makes of it when it is unset and when it is set:
// the names are documented and set by docker-compose.yml, .env.example and the dev stack, so a
// change to the structs must not move one. testdata/*.golden was generated from the code before
// the settings were grouped; change it only to change a variable on purpose.
func TestVariablesStayTheSame(t *testing.T) {
	for _, c := range []struct {
		golden string
		spec   func() any
	}{
		{"worker.golden", func() any { return &Worker{} }},
		{"api.golden", func() any { return &API{} }},
	} {
		t.Run(c.golden, func(t *testing.T) {
			vars := variables(t, c.spec())
			for _, v := range vars {
				t.Setenv(v.name, "")
				os.Unsetenv(v.name)
				// A key that differs from its tag has been prefixed, and envconfig then falls
				// back to the bare tag too: a second, undocumented variable.
				if v.name != v.alt {
					t.Errorf("%s is looked up as %s: its struct is prefixed", v.alt, v.name)
				}
			}
			for _, v := range vars {
				if v.required {
					t.Setenv(v.name, valueFor(v))
				}
			}
			unset := loaded(t, c.spec())
			for _, v := range vars {
				t.Setenv(v.name, valueFor(v))
			}
			set := loaded(t, c.spec())

			slices.SortFunc(vars, func(a, b variable) int { return strings.Compare(a.name, b.name) })
			var got strings.Builder
			got.WriteString("# variable | type | default | required | loaded when unset | loaded when set\n")
			for _, v := range vars {
				fmt.Fprintf(&got, "%s | %s | %s | %t | %s | %s\n", v.name, v.typ, v.def, v.required, unset[v.name], set[v.name])
			}
			want, err := os.ReadFile(filepath.Join("testdata", c.golden))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("the variables differ from testdata/%s\n--- want\n%s--- got\n%s", c.golden, want, got.String())
			}
		})
	}
}
