package billing

import (
	"context"
	"errors"
	"github.com/cartflow/cartflow/internal/domain"
	"net/http"
)

// WebhookVerifier checks one provider's webhook request with that provider's own scheme and
// parses it. It returns ErrBadSignature (wrapped) for a missing, stale or wrong signature or a
// tampered body, so that the BFF answers 400 and stores nothing.
type WebhookVerifier interface {
	Verify(ctx context.Context, header http.Header, body []byte) (domain.WebhookEvent, error)
}

// ErrBadSignature means a webhook request could not be verified as coming from the provider.
var ErrBadSignature = errors.New("webhook signature is not valid")
