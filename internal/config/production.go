package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// The values of CARTFLOW_ENV.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// minSecretLen is the shortest secret production accepts where a length is checked: 32 bytes,
// the size of a key no one guesses, and shorter than every provider's real secrets.
const minSecretLen = 32

// IsDevelopmentValue reports whether value is a known development value of the variable name
// (productionRules' dev), which production refuses.
func IsDevelopmentValue(name, value string) bool {
	for _, r := range productionRules {
		if r.name == name && slices.Contains(r.dev, value) {
			return true
		}
	}
	return false
}

// secretRule is what production demands of one variable. A variable that the spec does not
// read (the worker has no STRIPE_WEBHOOK_SECRET) is skipped; a list variable is checked element
// by element.
type secretRule struct {
	name string
	// dev are the variable's values that the local stack (internal/dev/stack), the provider
	// doubles, the config defaults and .env.example use. They are published in this
	// repository, so a production process running with one is open to anyone who reads it.
	// internal/dev/stack's tests check that its constants are listed; production code cannot
	// import internal/dev, so the list lives here.
	dev []string
	// when names the variable that turns the feature on; the rule applies only when it is set.
	when string
	// required refuses an empty value.
	required bool
	// minLen refuses a shorter value; an empty one only when required.
	minLen int
	// prefixes, when set, are the shapes the provider gives its keys; anything else is a typo
	// or a key of the wrong kind (a publishable key where the secret belongs).
	prefixes []string
}

// productionRules lists every secret and key production checks: one line per variable.
var productionRules = []secretRule{
	{name: "STRIPE_SECRET_KEY", required: true, minLen: minSecretLen, prefixes: []string{"sk_", "rk_"},
		dev: []string{"sk_test_cartflowlocal", "sk_test_replaceme"}},
	{name: "STRIPE_WEBHOOK_SECRET", minLen: minSecretLen, prefixes: []string{"whsec_"}, dev: []string{"whsec_cartflowlocal"}},
	{name: "STRIPE_PUBLISHABLE_KEY", prefixes: []string{"pk_"}, dev: []string{"pk_test_cartflowlocal"}},
	{name: "BRAINTREE_TOKENIZATION_KEY", dev: []string{"sandbox_cartflow_local"}},
	{name: "BRAINTREE_PUBLIC_KEY", dev: []string{"cartflow_local_public"}},
	{name: "BRAINTREE_PRIVATE_KEY", when: "BRAINTREE_PUBLIC_KEY", required: true, minLen: minSecretLen, dev: []string{"cartflow_local_private"}},
	{name: "PAYPAL_CLIENT_ID", dev: []string{"cartflow-local-paypal-client"}},
	{name: "PAYPAL_SECRET", when: "PAYPAL_CLIENT_ID", required: true, minLen: minSecretLen, dev: []string{"cartflow-local-paypal-secret"}},
	{name: "PAYPAL_WEBHOOK_ID", dev: []string{"0CARTFLOWLOCALWH1"}},
	{name: "RATE_LIMIT_HASH_KEY", required: true, minLen: minSecretLen},
	// The development keyring is public. A keyring may keep dev-1 to read old development
	// histories, but new payloads are never encrypted under it.
	{name: "CODEC_KEYS", required: true, dev: []string{DevCodecKeys}},
	{name: "CODEC_ACTIVE_KEY_ID", required: true, dev: []string{DevCodecKeyID}},
	{name: "CORALOGIX_PRIVATE_KEY", when: "CORALOGIX_ENDPOINT", required: true},
	{name: "SMTP_PASSWORD", when: "SMTP_USERNAME", required: true},
}

// CheckProduction refuses, when spec (a *Worker or *API, as Load fills it) runs with
// CARTFLOW_ENV=production, every known development secret and every empty or short secret
// where one is needed. The error names each offending variable, never its value, so that it
// can be logged. In development it checks only that CARTFLOW_ENV is a known value.
func CheckProduction(spec any) error {
	values, err := variableValues(spec)
	if err != nil {
		return err
	}
	env := first(values["CARTFLOW_ENV"])
	switch env {
	case EnvDevelopment:
		return nil
	case EnvProduction:
	default:
		return fmt.Errorf("configuration: CARTFLOW_ENV must be %q or %q", EnvDevelopment, EnvProduction)
	}
	var errs []error
	for _, r := range productionRules {
		vals, ok := values[r.name]
		if !ok || (r.when != "" && first(values[r.when]) == "") {
			continue
		}
		if problem := r.check(vals); problem != "" {
			errs = append(errs, fmt.Errorf("%s %s", r.name, problem))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration: CARTFLOW_ENV=production refuses to start: %w", errors.Join(errs...))
	}
	return nil
}

// check says what is wrong with a variable's values, in words that never quote them; "" when
// nothing is.
func (r secretRule) check(vals []string) string {
	set := slices.DeleteFunc(slices.Clone(vals), func(v string) bool { return v == "" })
	if len(set) == 0 {
		if r.required {
			return "is empty"
		}
		return ""
	}
	for _, v := range set {
		switch {
		case slices.Contains(r.dev, v):
			return "is a development value published in the repository"
		case len(v) < r.minLen:
			return fmt.Sprintf("is shorter than %d bytes", r.minLen)
		case len(r.prefixes) > 0 && !slices.ContainsFunc(r.prefixes, func(p string) bool { return strings.HasPrefix(v, p) }):
			return fmt.Sprintf("does not start with %s", strings.Join(r.prefixes, " or "))
		}
	}
	return ""
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

// variableValues reads spec's fields by the variable each is loaded from, as strings: a list
// gives one string per element.
func variableValues(spec any) (map[string][]string, error) {
	v := reflect.ValueOf(spec)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("configuration: CheckProduction takes a *Worker or *API, not %T", spec)
	}
	out := map[string][]string{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			if name := f.Tag.Get("envconfig"); name != "" {
				switch fv.Kind() {
				case reflect.Slice:
					for j := range fv.Len() {
						out[name] = append(out[name], fmt.Sprint(fv.Index(j).Interface()))
					}
					if fv.Len() == 0 {
						out[name] = []string{}
					}
				default:
					out[name] = []string{fmt.Sprint(fv.Interface())}
				}
				continue
			}
			if f.Type.Kind() == reflect.Struct && (f.Anonymous || f.Tag.Get("ignored") == "true") {
				walk(fv)
			}
		}
	}
	walk(v)
	return out, nil
}
