package directory

import (
	"errors"
	"testing"
)

func TestStandardize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		email, name         string
		wantEmail, wantName string
		wantErr             error
	}{
		{email: "  Ann@Example.COM ", name: "  Ann \t  Lee ", wantEmail: "ann@example.com", wantName: "Ann Lee"},
		{email: "first.last+tag@mail.example.org", name: "Zoë", wantEmail: "first.last+tag@mail.example.org", wantName: "Zoë"},
		{email: "ann", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "ann@localhost", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "Ann <ann@example.com>", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "ann@exa mple.com", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "ann@example..com", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "ann@@example.com", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "", name: "Ann", wantErr: ErrInvalidEmail},
		{email: "ann@example.com", name: " \n ", wantErr: ErrInvalidName},
		{email: "ann@example.com", name: "Ann\x00Lee", wantEmail: "ann@example.com", wantName: "Ann Lee"},
	}
	for _, tc := range cases {
		got, err := Standardize(tc.email, tc.name)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("Standardize(%q, %q) error = %v, want %v", tc.email, tc.name, err, tc.wantErr)
			continue
		}
		if err == nil && (got.Email != tc.wantEmail || got.Name != tc.wantName) {
			t.Errorf("Standardize(%q, %q) = %+v, want %q %q", tc.email, tc.name, got, tc.wantEmail, tc.wantName)
		}
	}
}
