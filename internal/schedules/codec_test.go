//go:build integration

package schedules_test

import (
	"context"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"google.golang.org/protobuf/proto"

	"github.com/cartflow/cartflow/internal/codec"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/schedules"
	"github.com/cartflow/cartflow/workflows"
)

// TestSyncThroughTheCodec syncs the schedules as the worker does, through a client with the
// payload codec: the schedule's action arguments are stored encrypted (the summary's carries the
// ops address), a second Sync updates them in place, and the run a trigger starts gets its input
// back through the codec.
func TestSyncThroughTheCodec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cdc, err := codec.FromSettings(config.DevCodecKeys, config.DevCodecKeyID)
	if err != nil {
		t.Fatal(err)
	}
	dc := codec.DataConverter(cdc)
	c, err := client.Dial(client.Options{HostPort: temporalHostPort, Logger: log.NewStructuredLogger(quiet),
		DataConverter: dc, FailureConverter: codec.FailureConverter(dc)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	s := testSettings()
	s.Paused = true
	s.SummaryInput.OpsEmail = "ops-codec@example.com"
	defs := renamed(schedules.Cartflow(s), "-test-codec")
	deleteAtEnd(t, defs)
	for range 2 { // create, then update in place
		if _, err := schedules.Sync(ctx, c, defs, quiet); err != nil {
			t.Fatal(err)
		}
	}
	id := workflows.DailySummaryScheduleID + "-test-codec"
	desc, err := c.WorkflowService().DescribeSchedule(ctx, &workflowservice.DescribeScheduleRequest{Namespace: "default", ScheduleId: id})
	if err != nil {
		t.Fatal(err)
	}
	input := desc.GetSchedule().GetAction().GetStartWorkflow().GetInput()
	raw, _ := proto.Marshal(input)
	if strings.Contains(string(raw), s.SummaryInput.OpsEmail) {
		t.Error("the schedule's action holds the ops address in clear")
	}
	if got := string(input.GetPayloads()[0].GetMetadata()[converter.MetadataEncoding]); got != codec.Encoding {
		t.Errorf("action input encoding %q, want %q", got, codec.Encoding)
	}

	if err := schedules.Trigger(ctx, c, id); err != nil {
		t.Fatal(err)
	}
	run := waitStarted(t, id, 1)[0]
	ev, err := c.GetWorkflowHistory(ctx, run, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.DailySummaryInput
	if err := dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	if in != s.SummaryInput {
		t.Fatalf("run input %+v, want %+v", in, s.SummaryInput)
	}
}
