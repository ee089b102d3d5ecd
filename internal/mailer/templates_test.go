package mailer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/mailer"
)

func ptr[T any](v T) *T { return &v }

// wantAll fails unless s contains every one of subs.
func wantAll(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// wantNone fails if s contains any of subs.
func wantNone(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("%s contains %q:\n%s", what, sub, s)
		}
	}
}

func render(t *testing.T, d mailer.Data) mailer.Content {
	t.Helper()
	c, err := mailer.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != d.Kind() || c.Text == "" || !strings.HasPrefix(c.HTML, "<!DOCTYPE html>") {
		t.Fatalf("Render(%s) = %+v", d.Kind(), c)
	}
	return c
}

func TestRenderReceipt(t *testing.T) {
	t.Parallel()
	c := render(t, mailer.Receipt{Name: "Ada Lovelace", OrderID: "ord-42", Description: "Classic T-shirt × 2", Amount: 6200, Currency: "usd"})
	if c.Subject != "Your cartflow receipt (62.00 USD)" {
		t.Errorf("subject %q", c.Subject)
	}
	for what, body := range map[string]string{"text": c.Text, "HTML": c.HTML} {
		wantAll(t, what, body, "Hi Ada Lovelace,", "Thank you for your order", "ord-42", "Classic T-shirt × 2", "62.00 USD")
		wantNone(t, what, body, "Paid until", "renewed")
	}

	c = render(t, mailer.Receipt{OrderID: "ord-43", Description: "cartflow Plus, monthly", Amount: 900, Currency: "usd",
		PeriodEnd: ptr(time.Date(2025, 4, 10, 9, 0, 0, 0, time.UTC)), Renewal: true})
	if c.Subject != "Your cartflow Plus, monthly renewal receipt (9.00 USD)" {
		t.Errorf("subject %q", c.Subject)
	}
	for what, body := range map[string]string{"text": c.Text, "HTML": c.HTML} {
		wantAll(t, what, body, "Hello,", "renewed", "ord-43", "9.00 USD", "Paid until", "April 10, 2025")
	}
}

func TestRenderTrialEnding(t *testing.T) {
	t.Parallel()
	c := render(t, mailer.TrialEnding{Name: "Ada", Plan: "cartflow Plus", Amount: 900, Currency: "usd",
		TrialEnd: time.Date(2025, 3, 13, 22, 5, 0, 0, time.FixedZone("CET", 3600))})
	if c.Subject != "Your cartflow Plus trial ends on March 13, 2025" {
		t.Errorf("subject %q", c.Subject)
	}
	for what, body := range map[string]string{"text": c.Text, "HTML": c.HTML} {
		// Shown in UTC, and saying so.
		wantAll(t, what, body, "Hi Ada,", "cartflow Plus", "March 13, 2025 at 21:05 UTC", "9.00 USD", "cancel before")
	}
}

func TestRenderPaymentFailedSaysWhatHappensNext(t *testing.T) {
	t.Parallel()
	retry := time.Date(2025, 3, 13, 10, 0, 0, 0, time.UTC)
	cancels := time.Date(2025, 3, 24, 10, 0, 0, 0, time.UTC)
	base := mailer.PaymentFailed{Name: "Ada", Plan: "cartflow Plus", Amount: 900, Currency: "usd", DeclineReason: "insufficient funds"}
	tests := []struct {
		name    string
		edit    func(*mailer.PaymentFailed)
		subject string
		want    []string
		absent  []string
	}{
		{
			name:    "a retry is scheduled",
			edit:    func(p *mailer.PaymentFailed) { p.NextRetry, p.CancelsAt = &retry, &cancels },
			subject: "Action needed: your cartflow Plus payment failed",
			want: []string{"9.00 USD", "insufficient funds", "try the payment again on", "March 13, 2025 at 10:00 UTC",
				"has not succeeded by", "March 24, 2025 at 10:00 UTC", "will be canceled", "update your payment method"},
			absent: []string{"has been canceled", "will not try"},
		},
		{
			name:    "no retry left, not canceled yet",
			edit:    func(p *mailer.PaymentFailed) { p.CancelsAt = &cancels },
			subject: "Action needed: your cartflow Plus payment failed",
			want:    []string{"will not try this payment again", "March 24, 2025 at 10:00 UTC", "will be canceled", "update your payment method"},
			absent:  []string{"try the payment again on", "has been canceled"},
		},
		{
			name:    "final attempt, canceled",
			edit:    func(p *mailer.PaymentFailed) { p.Final, p.CancelsAt = true, &cancels },
			subject: "Your cartflow Plus subscription has been canceled",
			want:    []string{"last attempt", "has been canceled as of March 24, 2025 at 10:00 UTC", "update your payment method"},
			absent:  []string{"try the payment again on", "will be canceled"},
		},
		{
			name:    "no decline reason",
			edit:    func(p *mailer.PaymentFailed) { p.DeclineReason, p.NextRetry = "", &retry },
			subject: "Action needed: your cartflow Plus payment failed",
			want:    []string{"try the payment again on", "March 13, 2025 at 10:00 UTC", "If the payment does not succeed, your subscription will be canceled"},
			absent:  []string{"reason:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			tc.edit(&d)
			c := render(t, d)
			if c.Subject != tc.subject {
				t.Errorf("subject %q, want %q", c.Subject, tc.subject)
			}
			for what, body := range map[string]string{"text": c.Text, "HTML": c.HTML} {
				wantAll(t, what, body, tc.want...)
				wantNone(t, what, body, tc.absent...)
			}
		})
	}
}

func TestRenderRenewalRefunded(t *testing.T) {
	t.Parallel()
	c := render(t, mailer.RenewalRefunded{Name: "Ada", Plan: "cartflow Plus", Amount: 900, Currency: "usd",
		Reason: "the subscription was canceled while the renewal was being charged"})
	if c.Subject != "Your cartflow Plus renewal payment of 9.00 USD has been refunded" {
		t.Errorf("subject %q", c.Subject)
	}
	for what, body := range map[string]string{"text": c.Text, "HTML": c.HTML} {
		wantAll(t, what, body, "Hi Ada", "9.00 USD", "canceled while the renewal was being charged", "refunded", "not be charged again")
	}
}

func TestRenderCancellation(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	c := render(t, mailer.Cancellation{Name: "Ada", Plan: "cartflow Plus", EffectiveAt: at})
	if c.Subject != "Your cartflow Plus subscription will end on April 1, 2025" {
		t.Errorf("subject %q", c.Subject)
	}
	wantAll(t, "text", c.Text, "keep access until April 1, 2025 at 00:00 UTC", "not be charged again")
	c = render(t, mailer.Cancellation{Name: "Ada", Plan: "cartflow Plus", EffectiveAt: at, Immediate: true})
	if c.Subject != "Your cartflow Plus subscription is canceled" {
		t.Errorf("subject %q", c.Subject)
	}
	for what, body := range map[string]string{"text": c.Text, "HTML": c.HTML} {
		wantAll(t, what, body, "was canceled on April 1, 2025 at 00:00 UTC", "not be charged again")
		wantNone(t, what, body, "keep access")
	}
}

func TestRenderDailySummary(t *testing.T) {
	t.Parallel()
	c := render(t, mailer.DailySummary{Day: "2025-03-10", NewOrders: 31, NewSubscriptions: 7, RenewalsSucceeded: 12,
		RenewalsFailed: 3, Cancellations: 2, InDunning: 5,
		Revenue: []mailer.Money{{Currency: "eur", Amount: 5400}, {Currency: "jpy", Amount: 1500}, {Currency: "usd", Amount: -300}}})
	if c.Subject != "cartflow daily summary for 2025-03-10" {
		t.Errorf("subject %q", c.Subject)
	}
	wantAll(t, "text", c.Text, "New orders:          31\n", "Revenue:             54.00 EUR, 1,500 JPY, -3.00 USD\n",
		"New subscriptions:   7\n", "Renewals succeeded:  12\n", "Renewals failed:     3\n", "Cancellations:       2\n",
		"In dunning (now):    5\n")
	wantAll(t, "HTML", c.HTML, "<td>31</td>", "54.00 EUR<br>1,500 JPY<br>-3.00 USD", "<td>7</td>", "<td>12</td>", "<td>3</td>",
		"<td>2</td>", "<td>5</td>")

	c = render(t, mailer.DailySummary{Day: "2025-03-11"})
	wantAll(t, "text", c.Text, "Revenue:             none\n", "New orders:          0\n")
}

func TestRenderEscapesHTMLAndKeepsSubjectOnOneLine(t *testing.T) {
	t.Parallel()
	c := render(t, mailer.Cancellation{Name: `<script>alert("x")</script> & Co`, Plan: "Evil\r\nBcc: victim@example.com", EffectiveAt: time.Now(), Immediate: true})
	if strings.ContainsAny(c.Subject, "\r\n") || c.Subject != "Your Evil Bcc: victim@example.com subscription is canceled" {
		t.Errorf("subject %q", c.Subject)
	}
	wantNone(t, "HTML", c.HTML, "<script>")
	wantAll(t, "HTML", c.HTML, "&lt;script&gt;", "&amp; Co")
	wantAll(t, "text", c.Text, `<script>alert("x")</script> & Co`)
}
