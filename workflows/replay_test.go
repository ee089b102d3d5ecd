package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays histories recorded from real runs on the Temporal dev
// server: the end-to-end tests write them when CARTFLOW_RECORD_HISTORIES names testdata/ (see
// docs/testing.md), and the first Purchase ones came from `temporal workflow show --output json`.
// A change to a workflow that would break runs already in flight fails here with a
// nondeterminism error.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Every workflow type has at least one recorded run.
	for _, prefix := range []string{"purchase_", "renewal_renewed", "renewal_canceled", "renewal_sweep", "subscription_change_", "daily_summary", "cleanup", "purchase_3ds_", "provider_event_", "refund_"} {
		if m, _ := filepath.Glob(filepath.Join("testdata", prefix+"*.json")); len(m) == 0 {
			t.Errorf("no recorded history matches %s*.json", prefix)
		}
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			replayer := worker.NewWorkflowReplayer()
			Register(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replay %s: %v", file, err)
			}
		})
	}
}
