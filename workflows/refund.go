package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/cartflow/cartflow/activities"
)

// Refund returns money of an order's payment, in full or in part, as staff asked through the
// BFF. Its ID carries the request's Idempotency-Key, so a repeated request is the same refund.
// The ledger refuses a refund that, with every other, would exceed what was captured.
func Refund(ctx workflow.Context, in RefundRequest) (RefundOutcome, error) {
	out := RefundOutcome{OrderID: in.OrderID, Status: RefundRefused}
	var order activities.OrderView
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.LoadOrder, in.OrderID).Get(ctx, &order); err != nil {
		return refundRefused(out, err)
	}
	out.Currency = order.Currency
	out.Amount = in.Amount
	if out.Amount == 0 {
		out.Amount = order.Amount - order.RefundedAmount
	}
	var res activities.RefundResult
	if err := workflow.ExecuteActivity(refundOptions(ctx), a.Refund, activities.RefundInput{
		OrderID: order.OrderID, Provider: order.Provider, PaymentRef: order.PaymentRef,
		IdempotencyKey: workflow.GetInfo(ctx).WorkflowExecution.ID + "/refund", Amount: out.Amount, Currency: order.Currency,
		Requested: true,
	}).Get(ctx, &res); err != nil {
		return refundRefused(out, err)
	}
	out.Status, out.ProviderRef = RefundSucceeded, res.ProviderRef
	if err := workflow.ExecuteLocalActivity(dbOptions(ctx), a.LoadOrder, in.OrderID).Get(ctx, &order); err != nil {
		return out, err
	}
	out.OrderStatus, out.RefundedTotal = order.Status, order.RefundedAmount
	return out, nil
}

// refundRefused turns a final failure into a refused refund; any other error fails the run.
func refundRefused(out RefundOutcome, err error) (RefundOutcome, error) {
	f, ok := finalFailure(err)
	if !ok {
		return out, err
	}
	out.FailureCode, out.FailureMessage = f.Code, f.Message
	return out, nil
}
