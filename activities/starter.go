package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// WorkflowStart is one workflow a sweep starts.
type WorkflowStart struct {
	ID  string `json:"id"`
	Arg any    `json:"arg"`
}

// StartWorkflowsInput is a batch of workflows of one type to start.
type StartWorkflowsInput struct {
	WorkflowType string          `json:"workflow_type"`
	TaskQueue    string          `json:"task_queue"`
	Starts       []WorkflowStart `json:"starts"`
}

// StartWorkflowsResult counts what a batch did.
type StartWorkflowsResult struct {
	Started int `json:"started"`
	// AlreadyStarted counts IDs that a workflow, running or closed, already holds: an overlapping
	// or repeated sweep. They are not started again.
	AlreadyStarted int `json:"already_started"`
}

// startConcurrency bounds the start requests in flight, so that a large batch neither queues up
// at the frontend nor takes as long as starting them one by one.
const startConcurrency = 8

// StartWorkflows starts each workflow of the batch under its own ID. An ID ever used before is
// refused by Temporal (reuse policy REJECT_DUPLICATE), which is what makes a period renewable once.
// Retrying the activity is safe for the same reason.
func (a *Activities) StartWorkflows(ctx context.Context, in StartWorkflowsInput) (StartWorkflowsResult, error) {
	if a.Temporal == nil {
		return StartWorkflowsResult{}, errors.New("activities: no Temporal client to start workflows with")
	}
	stop := a.heartbeat(ctx)
	defer stop()
	var (
		mu       sync.Mutex
		res      StartWorkflowsResult
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, startConcurrency)
	)
	for _, s := range in.Starts {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: s.ID, TaskQueue: in.TaskQueue,
				WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				// Without it the SDK hands back the existing run as if it had just been started,
				// and a repeated sweep would count renewals it never started.
				WorkflowExecutionErrorWhenAlreadyStarted: true,
			}, in.WorkflowType, s.Arg)
			var already *serviceerror.WorkflowExecutionAlreadyStarted
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				res.Started++
			case errors.As(err, &already):
				res.AlreadyStarted++
			case firstErr == nil:
				firstErr = fmt.Errorf("start %s %s: %w", in.WorkflowType, s.ID, err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		// The retry starts the rest; those already started count as such.
		return res, firstErr
	}
	a.logger(ctx).InfoContext(ctx, "workflows started", "type", in.WorkflowType, "started", res.Started, "already_started", res.AlreadyStarted)
	return res, nil
}
