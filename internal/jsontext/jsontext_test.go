package jsontext_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cartflow/cartflow/internal/jsontext"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		wantPath  string // "-" for no error
		tooDeep   bool
	}{
		{"plain text", `{"email":"ada@example.com","items":[{"sku":"mug","quantity":1}]}`, "-", false},
		{"non-ASCII text and a surrogate pair", `{"name":"Zoë \ud83d\ude00 Ł","x":"\u00e9"}`, "-", false},
		{"an escaped backslash before u0000 is text", `{"name":"a\\u0000b"}`, "-", false},
		{"not JSON is left to the decoder", `{"name":"\u0000`, "-", false},
		{"NUL escape in a value", `{"name":"Ada\u0000"}`, "name", false},
		{"NUL escape in an array element", `{"items":[{"sku":"mug"},{"sku":"\u0000"}]}`, "items[1].sku", false},
		{"invalid UTF-8 in a nested value", "{\"payment\":{\"provider\":\"stripe\",\"token\":\"pm_\xff\"}}", "payment.token", false},
		{"invalid UTF-8 in a member name", "{\"payment\":{\"tok\xc3en\":\"x\"}}", "payment", false},
		{"invalid UTF-8 at the top", "\"\xed\xa0\x80\"", "", false},
		{"lone high surrogate", `{"email":"\ud800x"}`, "email", false},
		{"lone high surrogate at the end", `{"email":"x\ud800"}`, "email", false},
		{"lone low surrogate", `{"email":"\udc00"}`, "email", false},
		{"two high surrogates", `{"email":"\ud800\ud800"}`, "email", false},
		{"after numbers and literals", `{"a":1e400,"b":[true,null,-0.5],"c":"\u0000"}`, "c", false},
		{"nesting within the bound", strings.Repeat("[", jsontext.MaxDepth) + strings.Repeat("]", jsontext.MaxDepth), "-", false},
		{"nesting past the bound", `{"items":` + strings.Repeat("[", jsontext.MaxDepth) + strings.Repeat("]", jsontext.MaxDepth) + "}", "items" + strings.Repeat("[0]", jsontext.MaxDepth-1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := jsontext.Check([]byte(tc.doc))
			var je *jsontext.Error
			switch {
			case tc.wantPath == "-" && err != nil:
				t.Fatalf("Check = %v, want nil", err)
			case tc.wantPath == "-":
			case !errors.As(err, &je):
				t.Fatalf("Check = %v, want an *Error at %q", err, tc.wantPath)
			case je.Path != tc.wantPath || je.TooDeep != tc.tooDeep:
				t.Fatalf("Check = %+v, want path %q, too deep %v", je, tc.wantPath, tc.tooDeep)
			}
		})
	}
}
