package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/jsontext"
)

// WebhookVerifier checks one provider's webhook request with that provider's own scheme and
// parses it. It returns ErrBadSignature (wrapped) for a missing, stale or wrong signature or a
// tampered body, so that the BFF answers 400 and stores nothing.
type WebhookVerifier interface {
	Verify(ctx context.Context, header http.Header, body []byte) (domain.WebhookEvent, error)
}

// ErrBadSignature means a webhook request could not be verified as coming from the provider.
var ErrBadSignature = errors.New("webhook signature is not valid")

// storable returns e, or ErrBadSignature (wrapped) for an event that nothing downstream could
// keep: a body or a field that is not text PostgreSQL holds (its jsonb refuses NUL and invalid
// UTF-8 anywhere in the stored body, and a text column refuses them in a field), or a negative
// amount. A provider sends none of these; accepting one would start a ProviderEvent workflow
// whose store activity retries for ever, so it is refused like any body that is not an event.
func storable(body []byte, e domain.WebhookEvent) (domain.WebhookEvent, error) {
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 || (json.Valid(body) && jsontext.Check(body) != nil) {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the body is not UTF-8 text without NUL characters", ErrBadSignature)
	}
	for _, s := range []string{e.ID, e.ProviderType, e.PaymentRef, e.OrderID, e.Currency, e.Reason} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return domain.WebhookEvent{}, fmt.Errorf("%w: the event has a field that is not UTF-8 text", ErrBadSignature)
		}
	}
	if e.Amount < 0 {
		return domain.WebhookEvent{}, fmt.Errorf("%w: the event has a negative amount", ErrBadSignature)
	}
	return e, nil
}
