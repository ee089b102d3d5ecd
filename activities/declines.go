package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/store"
)

// DeclineLimits are the card-testing defence's velocity limits as the worker applies them: a
// card, client IP or email with Per… declines within Window is refused before the provider is
// asked. 0 turns a limit off.
type DeclineLimits struct {
	Window                          time.Duration
	PerIP, PerEmail, PerFingerprint int
}

// errTooManyDeclines refuses a payment whose source has been declined too often: final, and
// nothing was asked of the provider. It is a refusal like any other, so the order fails with
// its code and the workflow neither retries nor refunds.
var errTooManyDeclines = &billing.RejectedError{Code: "too_many_declines",
	Message: "too many payments were declined recently; retry later or contact support"}

// screenCard is the card-testing defence before a payment or card check: it reads the card's
// fingerprint from the provider (a read, which charges nothing) when the gateway can, and
// refuses with errTooManyDeclines when the card, or the IP or email the BFF recorded for this
// workflow, was declined too often within the window. It returns the fingerprint, which the
// decline is recorded with. The BFF has checked the IP and email already; checking them again
// here also stops checkouts that were in flight together when the threshold was crossed.
func (a *Activities) screenCard(ctx context.Context, provider, token string) (string, error) {
	lim := a.Declines
	var fingerprint string
	if fp, ok := a.Gateways[provider].(billing.Fingerprinter); ok && token != "" {
		f, err := fp.CardFingerprint(ctx, token)
		switch {
		case err == nil:
			fingerprint = f
		case !billing.IsFinal(err):
			return "", err
		}
		// A token the provider refuses to describe fails the charge itself, with the provider's reason.
	}
	if lim.Window <= 0 || (lim.PerIP <= 0 && lim.PerEmail <= 0 && lim.PerFingerprint <= 0) {
		return fingerprint, nil
	}
	src, err := a.Store.PaymentSourceOf(ctx, activity.GetInfo(ctx).WorkflowExecution.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	n, err := a.Store.CountDeclines(ctx, src, fingerprint, time.Now().Add(-lim.Window))
	if err != nil {
		return "", err
	}
	over := func(count, limit int) bool { return limit > 0 && count >= limit }
	if over(n.Fingerprint, lim.PerFingerprint) || over(n.IP, lim.PerIP) || over(n.Email, lim.PerEmail) {
		a.logger(ctx).WarnContext(ctx, "payment refused before the provider: too many declines", "provider", provider,
			"by_card", n.Fingerprint, "by_ip", n.IP, "by_email", n.Email)
		return fingerprint, errTooManyDeclines
	}
	return fingerprint, nil
}

// recordDecline writes a provider's decline, with the card's fingerprint, against this
// workflow's source, for the velocity limits. It is best-effort: a decline is final whether or
// not it is counted, and a retry would not reach this point again (the ledger answers it).
func (a *Activities) recordDecline(ctx context.Context, provider, fingerprint string, err error) {
	var d *billing.DeclineError
	if !errors.As(err, &d) {
		return
	}
	if rerr := a.Store.RecordDecline(context.WithoutCancel(ctx), activity.GetInfo(ctx).WorkflowExecution.ID, provider, fingerprint); rerr != nil {
		a.logger(ctx).WarnContext(ctx, "decline not recorded for the velocity limits", "error", rerr)
	}
}
