package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/jackc/pgx/v5"
)

// allowedFrom lists, for each status, the statuses an order may move to it from. Repeating a
// move is allowed so that a retried activity succeeds; moving backwards is not, so that a stale
// retry can never undo a later step.
var allowedFrom = map[domain.OrderStatus][]domain.OrderStatus{
	domain.OrderCharging:          {domain.OrderPending, domain.OrderCharging},
	domain.OrderRequiresAction:    {domain.OrderCharging, domain.OrderRequiresAction},
	domain.OrderPaid:              {domain.OrderPending, domain.OrderCharging, domain.OrderRequiresAction, domain.OrderPaid},
	domain.OrderFailed:            {domain.OrderPending, domain.OrderCharging, domain.OrderRequiresAction, domain.OrderFailed},
	domain.OrderCompleted:         {domain.OrderPaid, domain.OrderCompleted},
	domain.OrderRefunded:          {domain.OrderCharging, domain.OrderPaid, domain.OrderCompleted, domain.OrderFailed, domain.OrderPartiallyRefunded, domain.OrderRefunded},
	domain.OrderPartiallyRefunded: {domain.OrderPaid, domain.OrderCompleted, domain.OrderPartiallyRefunded},
	// A checkout abandoned before payment, or whose customer never finished authenticating.
	domain.OrderExpired: {domain.OrderPending, domain.OrderRequiresAction, domain.OrderExpired},
}

// ErrTransition means an order is not in a status the requested move can start from.
var ErrTransition = errors.New("order status does not allow this change")

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

const orderColumns = `id::text, checkout_id, idempotency_key, request_hash, workflow_id, coalesce(user_id::text, ''),
	customer_email, customer_name, status, total_amount, coalesce(currency, ''), refunded_amount, provider,
	coalesce(provider_payment_ref, ''), coalesce(failure_code, ''), coalesce(decline_code, ''), coalesce(failure_message, ''),
	created_at, updated_at, completed_at`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	err := row.Scan(&o.ID, &o.CheckoutID, &o.IdempotencyKey, &o.RequestHash, &o.WorkflowID, &o.UserID,
		&o.Email, &o.Name, &o.Status, &o.TotalAmount, &o.Currency, &o.RefundedAmount, &o.Provider,
		&o.ProviderPaymentRef, &o.FailureCode, &o.DeclineCode, &o.FailureMessage, &o.CreatedAt, &o.UpdatedAt, &o.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNotFound
	}
	return o, err
}

// CreateOrder prices the cart from the catalog and writes the order with its lines in one
// transaction. A checkout has one order: if it was written before (a retried activity), the
// existing order is returned unchanged. A cart that cannot be priced is recorded as a failed order.
func (s *Store) CreateOrder(ctx context.Context, n NewOrder) (Order, error) {
	var out Order
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		existing, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE checkout_id = $1`, n.CheckoutID))
		if err == nil {
			out = existing
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
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
			catalog, err := productsBySKU(ctx, tx, skus, true)
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
		// A concurrent twin of this transaction (an overlapping retry) conflicts on checkout_id and
		// idempotency_key alike, so any unique conflict counts; the loser reads the winner's row.
		row := tx.QueryRow(ctx, `
			INSERT INTO orders (checkout_id, idempotency_key, request_hash, workflow_id, customer_email, customer_name,
				status, total_amount, currency, provider, failure_code, failure_message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT DO NOTHING
			RETURNING `+orderColumns,
			n.CheckoutID, n.IdempotencyKey, n.RequestHash, n.WorkflowID, n.Email, n.Name,
			status, total, currency, n.Provider, code, message)
		out, err = scanOrder(row)
		if errors.Is(err, ErrNotFound) {
			out, err = scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE checkout_id = $1`, n.CheckoutID))
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("idempotency key %q already belongs to another checkout", n.IdempotencyKey)
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		for _, l := range lines {
			if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_amount, line_amount)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, out.ID, l.LineNo, l.SKU, l.Name, l.Quantity, l.UnitAmount, l.LineAmount); err != nil {
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

// CheckoutByID returns the order of a checkout, with its lines.
func (s *Store) CheckoutByID(ctx context.Context, checkoutID string) (Order, error) {
	return s.orderWhere(ctx, `checkout_id = $1`, checkoutID)
}

// CheckoutByIdempotencyKey returns the order written for a client's Idempotency-Key, with its lines.
func (s *Store) CheckoutByIdempotencyKey(ctx context.Context, key string) (Order, error) {
	return s.orderWhere(ctx, `idempotency_key = $1`, key)
}

// OrderByID returns an order, with its lines. An id that is not a UUID cannot exist.
func (s *Store) OrderByID(ctx context.Context, id string) (Order, error) {
	if !uuidPattern.MatchString(id) {
		return Order{}, ErrNotFound
	}
	return s.orderWhere(ctx, `id = $1::uuid`, id)
}

func (s *Store) orderWhere(ctx context.Context, where string, arg any) (Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE `+where, arg))
	if err != nil {
		return o, err
	}
	o.Lines, err = s.orderLines(ctx, o.ID)
	return o, err
}

func (s *Store) orderLines(ctx context.Context, orderID string) ([]PricedLine, error) {
	rows, err := s.pool.Query(ctx, `SELECT line_no, sku, name, quantity, unit_amount, line_amount
		FROM order_items WHERE order_id = $1 ORDER BY line_no`, orderID)
	if err != nil {
		return nil, fmt.Errorf("query order lines: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[PricedLine])
}

// moveOrder changes an order's status when allowedFrom permits it; set holds extra assignments
// whose placeholders start at $3.
func moveOrder(ctx context.Context, tx pgx.Tx, orderID string, to domain.OrderStatus, set string, args ...any) error {
	sql := `UPDATE orders SET status = $2, updated_at = now()` + set + ` WHERE id = $1 AND status = ANY($` +
		fmt.Sprint(3+len(args)) + `)`
	all := append([]any{orderID, to}, args...)
	all = append(all, allowedFrom[to])
	tag, err := tx.Exec(ctx, sql, all...)
	if err != nil {
		return fmt.Errorf("move order %s to %s: %w", orderID, to, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("move order %s to %s: %w", orderID, to, ErrTransition)
	}
	return nil
}

// FailOrder records that a checkout failed before any money moved.
func (s *Store) FailOrder(ctx context.Context, orderID string, f domain.Failure) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return moveOrder(ctx, tx, orderID, domain.OrderFailed, `, failure_code = $3, failure_message = $4`, f.Code, f.Message)
	})
}

// CompleteOrder links the order to its confirmed user and marks it completed. An order with
// nothing due (a plan that starts with a trial) counts as paid once it gets this far.
func (s *Store) CompleteOrder(ctx context.Context, orderID, userID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid', updated_at = now()
			WHERE id = $1 AND status = 'pending' AND total_amount = 0`, orderID); err != nil {
			return fmt.Errorf("complete order %s: %w", orderID, err)
		}
		return moveOrder(ctx, tx, orderID, domain.OrderCompleted, `, user_id = $3::uuid, completed_at = coalesce(completed_at, now())`, userID)
	})
}
