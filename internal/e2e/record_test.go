//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordHistory saves a closed workflow's history as workflows/testdata/<name>.json, in the
// format of `temporal workflow show --output json`, when CARTFLOW_RECORD_HISTORIES names that
// folder. The replay tests in workflows/ replay these files, so that a change to a workflow
// that would break runs in flight fails there. It does nothing otherwise.
func recordHistory(t *testing.T, workflowID, name string) {
	t.Helper()
	dir := os.Getenv("CARTFLOW_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	ctx := context.Background()
	waitFor(t, workflowID+" to close", 30*time.Second, func() bool {
		d, err := temporal.DescribeWorkflowExecution(ctx, workflowID, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	iter := temporal.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h historypb.History
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
	}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// latestRun returns the ID of the newest run of a workflow type, such as one a schedule started.
func latestRun(t *testing.T, workflowType string) string {
	t.Helper()
	var id string
	waitFor(t, "a run of "+workflowType, 10*time.Second, func() bool {
		resp, err := temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = '%s'", workflowType), PageSize: 1,
		})
		if err != nil || len(resp.GetExecutions()) == 0 {
			return false
		}
		id = resp.GetExecutions()[0].GetExecution().GetWorkflowId()
		return true
	})
	return id
}
