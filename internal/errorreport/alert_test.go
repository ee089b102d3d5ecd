package errorreport

import (
	"context"
	"strings"
	"testing"
)

func TestAlertIsSentWithItsLevelAndTagsScrubbed(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	rep.Alert(context.Background(), Alert{Kind: "orphan_payment", Message: "a payment took money without a paid order",
		Tags: map[string]string{TagProvider: "stripe", TagProviderRef: "pi_123", TagOrderID: "order-1", "note": "ada@example.com"}})
	flush(t, rep)
	e := srv.oneEvent(t)
	if e.Message != "a payment took money without a paid order" || e.Level != "warning" {
		t.Errorf("event %q at level %q", e.Message, e.Level)
	}
	for k, want := range map[string]string{TagAlert: "orphan_payment", TagProvider: "stripe", TagProviderRef: "pi_123", TagOrderID: "order-1"} {
		if e.Tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, e.Tags[k], want)
		}
	}
	if _, raw := srv.Requests(); strings.Contains(raw, "ada@example.com") {
		t.Error("an email address in a tag reached Sentry")
	}

	rep.Alert(context.Background(), Alert{Kind: "orphan_payment", Message: "refund failed", Urgent: true})
	flush(t, rep)
	if events := srv.Events(); len(events) != 2 || events[1].Level != "error" {
		t.Fatalf("urgent alert: %+v", events)
	}
}

func TestAlertWithoutDSNSendsNothing(t *testing.T) {
	rep, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	rep.Alert(context.Background(), Alert{Kind: "orphan_payment", Message: "m"})
	var nilReporter *Reporter
	nilReporter.Alert(context.Background(), Alert{Kind: "orphan_payment", Message: "m"})
}
