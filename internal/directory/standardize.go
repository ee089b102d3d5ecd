// Package directory holds the User Directory's rules for customer identities: how an email
// address and a name are standardized before they are stored. It has no dependencies so that
// the BFF can refuse bad input with exactly the rules the workflow applies.
package directory

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"
)

// MaxEmailLength is the longest address RFC 5321 allows in a forward path.
const MaxEmailLength = 254

// MaxNameLength bounds a customer's display name.
const MaxNameLength = 200

// ErrInvalidEmail means the address cannot be delivered to and will not become valid by retrying.
var ErrInvalidEmail = errors.New("invalid email address")

// ErrInvalidName means the name is empty or too long after tidying.
var ErrInvalidName = errors.New("invalid name")

// Customer is a standardized customer identity.
type Customer struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// Standardize trims and lower-cases the email, checks that it is a plain addr-spec with a dotted
// domain, and tidies the name (trimmed, inner white space collapsed, control characters removed).
func Standardize(email, name string) (Customer, error) {
	e, err := StandardizeEmail(email)
	if err != nil {
		return Customer{}, err
	}
	n, err := StandardizeName(name)
	if err != nil {
		return Customer{}, err
	}
	return Customer{Email: e, Name: n}, nil
}

// StandardizeEmail returns the normalized form of an email address or ErrInvalidEmail.
func StandardizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" || len(e) > MaxEmailLength {
		return "", ErrInvalidEmail
	}
	// ParseAddress accepts display names and comments ("Ann <a@b.c>"); only a bare address is an email here.
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", ErrInvalidEmail
	}
	at := strings.LastIndexByte(e, '@')
	local, domain := e[:at], e[at+1:]
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", ErrInvalidEmail
	}
	for _, r := range domain {
		if !(r == '.' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return "", ErrInvalidEmail
		}
	}
	return e, nil
}

// StandardizeName tidies a display name or returns ErrInvalidName.
func StandardizeName(name string) (string, error) {
	cleaned := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, name)
	n := strings.Join(strings.Fields(cleaned), " ")
	if n == "" || len([]rune(n)) > MaxNameLength {
		return "", ErrInvalidName
	}
	return n, nil
}
