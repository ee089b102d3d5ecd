//go:build integration

package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cartflow/cartflow/workflows"
)

// TestHistoryHoldsNoPersonalDataInClear reads a real checkout's history with a client that has
// no codec, as anyone with access to the Temporal cluster could, and finds neither the
// customer's email nor their name nor the payment token in it; through the codec the same
// history gives them back.
func TestHistoryHoldsNoPersonalDataInClear(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	email := "codec-" + strings.TrimPrefix(key, "e2e-") + "@example.com"
	body := validBody(email, "pm_card_visa")
	body.Name = "Grace Brewster Hopper"
	code, res := postJSON(t, key, body)
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("POST = %d %+v", code, res)
	}
	recordHistory(t, "checkout-"+key, "purchase_encrypted")

	quiet := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	raw, err := client.Dial(client.Options{HostPort: dev.Temporal.HostPort(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	waitFor(t, "the checkout to close", 30*time.Second, func() bool {
		d, err := raw.DescribeWorkflowExecution(ctx, "checkout-"+key, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	iter := raw.GetWorkflowHistory(ctx, "checkout-"+key, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var history, asJSON []byte
	var started *workflows.CheckoutInput
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := proto.Marshal(e)
		j, _ := protojson.Marshal(e)
		history, asJSON = append(history, b...), append(asJSON, j...)
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			started = &workflows.CheckoutInput{}
			// Through the codec the input decodes; without it, it does not.
			if err := codecConverter.FromPayloads(a.GetInput(), started); err != nil {
				t.Fatalf("the codec does not decode the workflow's input: %v", err)
			}
			var plain workflows.CheckoutInput
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &plain); err == nil {
				t.Errorf("the input decodes without the codec: %+v", plain)
			}
		}
	}
	if started == nil {
		t.Fatal("no WorkflowExecutionStarted event")
	}
	if started.Email != email || started.Name != body.Name || started.Payment.Token != "pm_card_visa" {
		t.Errorf("decoded input = %+v", started)
	}
	for _, secret := range []string{email, body.Name, "pm_card_visa", "Grace"} {
		if strings.Contains(string(history), secret) || strings.Contains(string(asJSON), secret) {
			t.Errorf("the raw history holds %q in clear", secret)
		}
	}
	if !strings.Contains(string(asJSON), "YmluYXJ5L2VuY3J5cHRlZA==") {
		t.Error("no payload in the history is marked binary/encrypted")
	}
}
