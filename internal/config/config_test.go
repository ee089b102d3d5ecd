package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryVariable keeps the tables of docs/configuration.md in step with the code:
// every variable must appear there with its default.
func TestDocsListEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 3 {
			rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.Trim(strings.TrimSpace(cells[2]), "`")
		}
	}
	for _, spec := range []any{&Worker{}, &API{}} {
		for _, v := range variables(t, spec) {
			got, ok := rows[v.name]
			switch {
			case !ok:
				t.Errorf("docs/configuration.md has no row for %s", v.name)
			case v.required && got != "(required)":
				t.Errorf("docs/configuration.md: %s default %q, want (required)", v.name, got)
			case !v.required && got != v.def:
				t.Errorf("docs/configuration.md: %s default %q, want %q", v.name, got, v.def)
			}
		}
	}
}

func TestLoadAppliesDefaultsAndRequiresTheStripeKey(t *testing.T) {
	t.Setenv("STRIPE_SECRET_KEY", "")
	os.Unsetenv("STRIPE_SECRET_KEY")
	var w Worker
	if err := Load(&w); err == nil || !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
		t.Fatalf("Load without STRIPE_SECRET_KEY: %v", err)
	}
	t.Setenv("STRIPE_SECRET_KEY", "sk_test_configtest")
	t.Setenv("CHECKOUT_WAIT", "750ms")
	var a API
	if err := Load(&a); err != nil {
		t.Fatal(err)
	}
	if a.CheckoutWait.Milliseconds() != 750 || a.HTTPAddr != ":8080" || a.MaxBodyBytes != 65536 {
		t.Fatalf("API config = %+v", a)
	}
}

// TestDevCodecKeysIsTheDefault keeps the exported development keyring, which the production
// check refuses, the one the defaults really use.
func TestDevCodecKeysIsTheDefault(t *testing.T) {
	t.Setenv("CODEC_KEYS", "")
	os.Unsetenv("CODEC_KEYS")
	t.Setenv("CODEC_ACTIVE_KEY_ID", "")
	os.Unsetenv("CODEC_ACTIVE_KEY_ID")
	var a API
	if err := Load(&a); err != nil {
		t.Fatal(err)
	}
	if a.Codec.Keys != DevCodecKeys || a.Codec.ActiveKeyID != DevCodecKeyID {
		t.Fatalf("codec defaults %q / %q, want DevCodecKeys / DevCodecKeyID", a.Codec.Keys, a.Codec.ActiveKeyID)
	}
}
