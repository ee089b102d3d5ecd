//go:build integration

package mailer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cartflow/cartflow/internal/dev/mailpit"
	"github.com/cartflow/cartflow/internal/mailer"
)

func TestSendDeliversToMailpit(t *testing.T) {
	t.Parallel()
	mp := mailpit.Start(t)
	m := mailer.New(mailer.Config{Addr: mp.SMTPAddr(), From: "cartflow <shop@example.com>", Timeout: 10 * time.Second})
	ctx := context.Background()

	content, err := mailer.Render(mailer.PaymentFailed{Name: "Zoë Ada", Plan: "cartflow Plus", Amount: 900, Currency: "usd",
		DeclineReason: "insufficient funds", NextRetry: ptr(time.Date(2025, 3, 13, 10, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(ctx, mailer.Message{
		To: "Zoë Ada <ada@example.com>", Subject: content.Subject + " — ünïcode",
		// A line starting with a dot must survive SMTP's dot-stuffing.
		Text: content.Text + ".signed\n", HTML: content.HTML, MessageID: "payment-failed-1@cartflow.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx, mailer.Message{To: "ops@example.com", Subject: "second", Text: "plain only"}); err != nil {
		t.Fatal(err)
	}

	list := mp.WaitForMessages(t, 2)
	if len(list) != 2 {
		t.Fatalf("Mailpit holds %d messages, want 2", len(list))
	}
	first := list[1] // newest first
	if first.Subject != "Action needed: your cartflow Plus payment failed — ünïcode" || len(first.To) != 1 ||
		first.To[0].Address != "ada@example.com" || first.To[0].Name != "Zoë Ada" ||
		first.From.Address != "shop@example.com" || first.From.Name != "cartflow" || first.MessageID != "payment-failed-1@cartflow.test" {
		t.Fatalf("received %+v", first)
	}
	got := mp.Message(t, first.ID)
	wantAll(t, "received text", got.Text, "Hi Zoë Ada,", "9.00 USD", "insufficient funds", "March 13, 2025 at 10:00 UTC",
		"update your payment method", "\r\n.signed\r\n")
	wantAll(t, "received HTML", got.HTML, "<strong>9.00 USD</strong>", "What happens next")

	second := mp.Message(t, list[0].ID)
	if second.Subject != "second" || strings.TrimRight(second.Text, "\r\n") != "plain only" || second.HTML != "" || len(second.To) != 1 || second.To[0].Address != "ops@example.com" {
		t.Fatalf("second message %+v", second)
	}
}
