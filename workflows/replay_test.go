package workflows

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/cartflow/cartflow/internal/codec"
	"github.com/cartflow/cartflow/internal/config"
)

// TestReplayRecordedHistories replays histories recorded from real runs on the Temporal dev
// server: the end-to-end tests write them when CARTFLOW_RECORD_HISTORIES names testdata/ (see
// docs/testing.md), and the first Purchase ones came from `temporal workflow show --output json`.
// A change to a workflow that would break runs already in flight fails here with a
// nondeterminism error.
//
// Every history replays through the worker's own converters, with the payload codec under the
// development keyring (the e2e stack's): the ones recorded before the codec hold plaintext
// payloads, which the codec passes through, and prove that runs started before it still replay;
// the later ones are encrypted and prove that the codec decrypts what it wrote.
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
	// Both kinds of history are among them.
	var plain, encrypted int
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(`"`+encodedEncryptedEncoding+`"`)) {
			encrypted++
		} else {
			plain++
		}
	}
	if plain == 0 || encrypted == 0 {
		t.Errorf("%d plaintext and %d encrypted histories: want both", plain, encrypted)
	}
	cdc, err := codec.FromSettings(config.DevCodecKeys, config.DevCodecKeyID)
	if err != nil {
		t.Fatal(err)
	}
	dc := codec.DataConverter(cdc)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: dc, FailureConverter: codec.FailureConverter(dc),
			})
			if err != nil {
				t.Fatal(err)
			}
			Register(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replay %s: %v", file, err)
			}
		})
	}
}

// encodedEncryptedEncoding is codec.Encoding as protojson writes metadata bytes (base64).
const encodedEncryptedEncoding = "YmluYXJ5L2VuY3J5cHRlZA=="
