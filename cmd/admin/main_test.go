package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBadCommandLinesPrintTheUsageAndExit2(t *testing.T) {
	// DATABASE_URL points nowhere: a refused command line must not get as far as the database.
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	for name, args := range map[string][]string{
		"nothing":               {},
		"unknown group":         {"users", "list"},
		"unknown command":       {"keys", "rotate"},
		"create without a name": {"keys", "create", "--scope", "refunds"},
		"create without scope":  {"keys", "create", "--name", "Ada"},
		"unknown scope":         {"keys", "create", "--name", "Ada", "--scope", "admin"},
		"unknown scope in list": {"keys", "create", "--name", "Ada", "--scope", "refunds,everything"},
		"unknown flag":          {"keys", "create", "--name", "Ada", "--scope", "ops", "--forever"},
		"stray argument":        {"keys", "create", "--name", "Ada", "--scope", "ops", "extra"},
		"list with arguments":   {"keys", "list", "--all"},
		"revoke without a key":  {"keys", "revoke"},
		"revoke two keys":       {"keys", "revoke", "a", "b"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if code := exitCode(err); code != 2 {
			t.Errorf("%s: exit %d (%v), want 2", name, code, err)
		}
		if !strings.Contains(stderr.String(), "usage:") || stdout.Len() != 0 {
			t.Errorf("%s: stdout %q, stderr %q", name, stdout.String(), stderr.String())
		}
	}
}

func TestScopeFlagsTakeRepeatsAndLists(t *testing.T) {
	name, scopes, err := parseCreate([]string{"--name", " Ada ", "--scope", "refunds", "--scope", "orders:read,refunds", "--scope=ops"})
	if err != nil || name != "Ada" || strings.Join(scopes, ",") != "refunds,orders:read,ops" {
		t.Fatalf("%q %v %v", name, scopes, err)
	}
}
