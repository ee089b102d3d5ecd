package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store/db"
	"github.com/jackc/pgx/v5"
)

// An order moves between statuses only through the transition queries in queries/orders.sql,
// one per target status, each listing in its WHERE the statuses it may start from:
//
//	to                   from
//	charging             pending, charging
//	requires_action      charging, requires_action
//	paid                 pending, charging, requires_action, paid
//	failed               pending, charging, requires_action, failed
//	completed            paid, completed
//	refunded             charging, paid, completed, failed, partially_refunded, refunded
//	partially_refunded   paid, completed, partially_refunded
//	expired              pending, requires_action, expired
//
// Repeating a move is allowed so that a retried activity succeeds; moving backwards is not, so
// that a stale retry can never undo a later step. A transition that matches no row is refused
// with ErrTransition.

// ErrTransition means an order is not in a status the requested move can start from.
var ErrTransition = errors.New("order status does not allow this change")

// moved turns the outcome of an order transition query into the store's error: ErrTransition
// when the order was not in a status the move starts from.
func moved(orderID string, to domain.OrderStatus, rows int64, err error) error {
	if err != nil {
		return fmt.Errorf("move order %s to %s: %w", orderID, to, err)
	}
	if rows == 0 {
		return fmt.Errorf("move order %s to %s: %w", orderID, to, ErrTransition)
	}
	return nil
}

// NewOrder is what the order activity writes for a checkout.
type NewOrder struct {
	CheckoutID     string
	IdempotencyKey string
	RequestHash    string
	WorkflowID     string
	Email          string
	Name           string
	Provider       string
	Lines          []LineRequest
	// Rejection, when set, records the checkout as failed without pricing it.
	Rejection *domain.Failure
}

// Order is an order with its lines; it is also the checkout's read model.
type Order struct {
	ID                 string
	CheckoutID         string
	IdempotencyKey     string
	RequestHash        string
	WorkflowID         string
	UserID             string
	Email              string
	Name               string
	Status             domain.OrderStatus
	TotalAmount        int64
	Currency           string
	RefundedAmount     int64
	Provider           string
	ProviderPaymentRef string
	FailureCode        string
	DeclineCode        string
	FailureMessage     string
	Lines              []PricedLine
	CreatedAt          time.Time
	UpdatedAt          time.Time
	CompletedAt        *time.Time
}

func orderFrom(r db.Order) Order {
	return Order{
		ID: r.ID, CheckoutID: r.CheckoutID, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash,
		WorkflowID: r.WorkflowID, UserID: deref(r.UserID), Email: r.CustomerEmail, Name: r.CustomerName,
		Status: r.Status, TotalAmount: r.TotalAmount, Currency: deref(r.Currency), RefundedAmount: r.RefundedAmount,
		Provider: r.Provider, ProviderPaymentRef: deref(r.ProviderPaymentRef), FailureCode: deref(r.FailureCode),
		DeclineCode: deref(r.DeclineCode), FailureMessage: deref(r.FailureMessage),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt,
	}
}

func lineFrom(r db.OrderItem) PricedLine {
	return PricedLine{
		LineNo: int(r.LineNo), SKU: r.Sku, Name: r.Name, Quantity: int(r.Quantity),
		UnitAmount: r.UnitAmount, LineAmount: r.LineAmount,
	}
}

// CreateOrder prices the cart from the catalog and writes the order with its lines in one
// transaction. A checkout has one order: if it was written before (a retried activity), the
// existing order is returned unchanged. A cart that cannot be priced is recorded as a failed order.
func (s *Store) CreateOrder(ctx context.Context, n NewOrder) (Order, error) {
	var out Order
	err := s.inTx(ctx, func(q *db.Queries) error {
		existing, err := q.OrderByCheckoutID(ctx, n.CheckoutID)
		if err == nil {
			out = orderFrom(existing)
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}

		status, failure := domain.OrderPending, n.Rejection
		var lines []PricedLine
		var total int64
		var currency *string
		if failure == nil {
			skus := make([]string, len(n.Lines))
			for i, l := range n.Lines {
				skus[i] = l.SKU
			}
			catalog, err := productsBySKU(q.LockProductsBySKU(ctx, skus))
			if err != nil {
				return err
			}
			priced, sum, cur, perr := PriceCart(n.Lines, catalog)
			if perr != nil {
				failure = &domain.Failure{Code: perr.Code, Message: perr.Message}
			} else {
				lines, total, currency = priced, sum, &cur
			}
		}
		var code, message *string
		if failure != nil {
			status, code, message = domain.OrderFailed, &failure.Code, &failure.Message
		}
		// The loser of a race with a concurrent twin (see InsertOrder) reads the winner's row.
		row, err := q.InsertOrder(ctx, db.InsertOrderParams{
			CheckoutID: n.CheckoutID, IdempotencyKey: n.IdempotencyKey, RequestHash: n.RequestHash, WorkflowID: n.WorkflowID,
			CustomerEmail: n.Email, CustomerName: n.Name, Status: status, TotalAmount: total, Currency: currency,
			Provider: n.Provider, FailureCode: code, FailureMessage: message,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			row, err = q.OrderByCheckoutID(ctx, n.CheckoutID)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("idempotency key %q already belongs to another checkout", n.IdempotencyKey)
			}
			out = orderFrom(row)
			return err
		}
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		out = orderFrom(row)
		for _, l := range lines {
			if err := q.InsertOrderItem(ctx, db.InsertOrderItemParams{
				OrderID: out.ID, LineNo: int32(l.LineNo), Sku: l.SKU, Name: l.Name, Quantity: int32(l.Quantity),
				UnitAmount: l.UnitAmount, LineAmount: l.LineAmount,
			}); err != nil {
				return fmt.Errorf("insert order line: %w", err)
			}
		}
		out.Lines = lines
		return nil
	})
	if err != nil {
		return Order{}, fmt.Errorf("create order for checkout %s: %w", n.CheckoutID, err)
	}
	if out.Lines == nil && out.Status != domain.OrderFailed {
		out.Lines, err = s.orderLines(ctx, out.ID)
	}
	return out, err
}

// CheckoutByID returns the order of a checkout, with its lines. It is the status read the
// storefront polls, so it is one query: the order joined to its lines.
func (s *Store) CheckoutByID(ctx context.Context, checkoutID string) (Order, error) {
	rows, err := s.q.CheckoutWithItems(ctx, checkoutID)
	if err != nil {
		return Order{}, err
	}
	if len(rows) == 0 {
		return Order{}, ErrNotFound
	}
	o := orderFrom(rows[0].Order)
	o.Lines = make([]PricedLine, 0, len(rows))
	for _, r := range rows {
		if r.LineNo == nil { // the order has no line: the join's one row is the order alone
			continue
		}
		o.Lines = append(o.Lines, PricedLine{LineNo: int(*r.LineNo), SKU: deref(r.Sku), Name: deref(r.ItemName),
			Quantity: int(deref(r.Quantity)), UnitAmount: deref(r.UnitAmount), LineAmount: deref(r.LineAmount)})
	}
	return o, nil
}

// RecordAcceptedCheckout notes that a checkout was answered 202 before its order was written,
// under the Idempotency-Key of the request that started it, so that its status read answers
// pending until the order exists (migrations/010_accepted_checkouts.sql).
func (s *Store) RecordAcceptedCheckout(ctx context.Context, checkoutID, idempotencyKey string) error {
	if err := s.q.RecordAcceptedCheckout(ctx, db.RecordAcceptedCheckoutParams{CheckoutID: checkoutID, IdempotencyKey: idempotencyKey}); err != nil {
		return fmt.Errorf("record accepted checkout: %w", err)
	}
	return nil
}

// IsAcceptedCheckout reports whether RecordAcceptedCheckout noted the checkout.
func (s *Store) IsAcceptedCheckout(ctx context.Context, checkoutID string) (bool, error) {
	return s.q.IsAcceptedCheckout(ctx, checkoutID)
}

// CheckoutByIdempotencyKey returns the order written for a client's Idempotency-Key, with its lines.
func (s *Store) CheckoutByIdempotencyKey(ctx context.Context, key string) (Order, error) {
	row, err := s.q.OrderByIdempotencyKey(ctx, key)
	return s.withLines(ctx, row, err)
}

// OrderByID returns an order, with its lines. An id that is not a UUID cannot exist.
func (s *Store) OrderByID(ctx context.Context, id string) (Order, error) {
	o, err := s.OrderHeader(ctx, id)
	if err != nil {
		return Order{}, err
	}
	o.Lines, err = s.orderLines(ctx, o.ID)
	return o, err
}

// OrderHeader reads an order without its lines (Lines is nil): one query instead of two, for
// callers that need only its figures and customer, such as a funnel event.
func (s *Store) OrderHeader(ctx context.Context, id string) (Order, error) {
	if !uuidPattern.MatchString(id) {
		return Order{}, ErrNotFound
	}
	row, err := s.q.OrderByID(ctx, id)
	if err != nil {
		return Order{}, notFound(err)
	}
	return orderFrom(row), nil
}

// withLines completes an order just read (row, err) with its lines.
func (s *Store) withLines(ctx context.Context, row db.Order, err error) (Order, error) {
	if err != nil {
		return Order{}, notFound(err)
	}
	o := orderFrom(row)
	o.Lines, err = s.orderLines(ctx, o.ID)
	return o, err
}

func (s *Store) orderLines(ctx context.Context, orderID string) ([]PricedLine, error) {
	rows, err := s.q.OrderItems(ctx, orderID)
	if err != nil {
		return nil, fmt.Errorf("query order lines: %w", err)
	}
	return convert(rows, lineFrom), nil
}

// FailOrder records that a checkout failed before any money moved.
func (s *Store) FailOrder(ctx context.Context, orderID string, f domain.Failure) error {
	rows, err := s.q.FailOrder(ctx, db.FailOrderParams{ID: orderID, FailureCode: f.Code, FailureMessage: f.Message})
	return moved(orderID, domain.OrderFailed, rows, err)
}

// CompleteOrder links the order to its confirmed user and marks it completed. An order with
// nothing due (a plan that starts with a trial) counts as paid once it gets this far. The
// messages in then are enqueued in the same transaction (see outbox.go), so that they exist
// exactly when the order is completed.
func (s *Store) CompleteOrder(ctx context.Context, orderID, userID string, then ...OutboxMessage) error {
	return s.inTx(ctx, func(q *db.Queries) error {
		if err := q.MarkFreeOrderPaid(ctx, orderID); err != nil {
			return fmt.Errorf("complete order %s: %w", orderID, err)
		}
		rows, err := q.CompleteOrder(ctx, db.CompleteOrderParams{ID: orderID, UserID: userID})
		if err := moved(orderID, domain.OrderCompleted, rows, err); err != nil {
			return err
		}
		return enqueue(ctx, q, then)
	})
}
