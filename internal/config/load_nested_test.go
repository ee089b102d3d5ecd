package config

import (
	"testing"
	"time"
)

// The worker's nested settings (SMTP, schedules) are read from their own variable names, with
// the dunning ladder as a comma-separated list of durations.
func TestLoadWorkerNestedSettings(t *testing.T) {
	t.Setenv("STRIPE_SECRET_KEY", "sk_test_configtest")
	t.Setenv("SMTP_ADDR", "127.0.0.1:2525")
	t.Setenv("DUNNING_RETRY_AFTER", "1h,2h")
	t.Setenv("SCHEDULES_PAUSED", "true")
	var w Worker
	if err := Load(&w); err != nil {
		t.Fatal(err)
	}
	if w.SMTP.Addr != "127.0.0.1:2525" || !w.Schedules.Paused || len(w.Schedules.DunningRetryAfter) != 2 || w.Schedules.DunningRetryAfter[1] != 2*time.Hour ||
		w.Schedules.TrialReminderBefore != 72*time.Hour || w.Schedules.RenewalSweepInterval != time.Hour || w.OpsEmail != "ops@cartflow.local" {
		t.Fatalf("worker config = %+v", w)
	}
}
