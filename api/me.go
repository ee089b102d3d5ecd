package main

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/directory"
	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
)

// Self-service under /api/v1/me. Every route runs after s.customer, so the customer is the
// session's user, and every resource is looked up and then checked to be theirs: another
// customer's id answers exactly as an id that does not exist (404), so that ids cannot be probed.

const (
	defaultOrdersPage = 20
	maxOrdersPage     = 100
)

var (
	errInvalidCursor = badRequest("invalid_cursor", "cursor", "cursor must be a next_cursor this API returned")
)

// customerView is the profile a customer sees of themselves.
type customerView struct {
	ID                 string     `json:"id"`
	Email              string     `json:"email"`
	Name               string     `json:"name"`
	Status             string     `json:"status"`
	ConfirmedAt        *time.Time `json:"confirmed_at"`
	SubscriptionStatus string     `json:"subscription_status"`
}

func customerViewOf(u store.User) customerView {
	return customerView{ID: u.ID, Email: u.Email, Name: u.Name, Status: u.Status, ConfirmedAt: utcPtr(u.ConfirmedAt),
		SubscriptionStatus: u.SubscriptionStatus}
}

// orderView is an order in the customer's account.
type orderView struct {
	ID             string          `json:"id"`
	CheckoutID     string          `json:"checkout_id"`
	Status         string          `json:"status"`
	Amount         int64           `json:"amount"`
	RefundedAmount int64           `json:"refunded_amount"`
	Currency       string          `json:"currency"`
	Provider       string          `json:"provider"`
	Items          []checkoutLine  `json:"items"`
	Failure        *domain.Failure `json:"failure,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	CompletedAt    *time.Time      `json:"completed_at"`
}

func orderViewOf(o store.Order) orderView {
	v := orderView{ID: o.ID, CheckoutID: o.CheckoutID, Status: string(o.Status), Amount: o.TotalAmount,
		RefundedAmount: o.RefundedAmount, Currency: o.Currency, Provider: o.Provider, Items: linesOf(o),
		CreatedAt: o.CreatedAt.UTC(), CompletedAt: utcPtr(o.CompletedAt)}
	if o.FailureCode != "" {
		v.Failure = &domain.Failure{Code: o.FailureCode, DeclineCode: o.DeclineCode, Message: o.FailureMessage}
	}
	return v
}

// me reads the signed-in customer; a session outliving its user (deleted by cleanup) is no session.
func (s *server) me(c *gin.Context) (store.User, bool) {
	u, err := s.store.UserByID(c.Request.Context(), c.GetString(customerIDKey))
	if errors.Is(err, store.ErrNotFound) {
		err = errSessionInvalid
	}
	if err != nil {
		writeError(c, err)
		return store.User{}, false
	}
	return u, true
}

// getMe answers the profile and the subscriptions' status.
func (s *server) getMe(c *gin.Context) {
	u, ok := s.me(c)
	if !ok {
		return
	}
	if subs, ok := s.mySubscriptions(c); ok {
		c.JSON(http.StatusOK, gin.H{"customer": customerViewOf(u), "subscriptions": subs})
	}
}

type updateMeRequest struct {
	Name *string `json:"name"`
}

// updateMe changes the customer's name.
func (s *server) updateMe(c *gin.Context) {
	var req updateMeRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Name == nil {
		writeError(c, unprocessable("missing_field", "name", "name is required"))
		return
	}
	name, err := directory.StandardizeName(*req.Name)
	if err != nil {
		writeError(c, unprocessable("invalid_name", "name", "name must be 1 to 200 characters of text"))
		return
	}
	u, err := s.store.RenameUser(c.Request.Context(), c.GetString(customerIDKey), name)
	if errors.Is(err, store.ErrNotFound) {
		err = errSessionInvalid
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"customer": customerViewOf(u)})
}

// listMyOrders pages the customer's orders newest first: ?limit (1–100, default 20) and
// ?cursor, the next_cursor of the page before (null on the last page).
func (s *server) listMyOrders(c *gin.Context) {
	limit := defaultOrdersPage
	if raw, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxOrdersPage {
			writeError(c, badRequest("invalid_limit", "limit", "limit must be a whole number from 1 to 100"))
			return
		}
		limit = n
	}
	var after store.OrderCursor
	if raw := c.Query("cursor"); raw != "" {
		var ok bool
		if after, ok = parseOrderCursor(raw); !ok {
			writeError(c, errInvalidCursor)
			return
		}
	}
	// One more than the page tells whether another page follows.
	orders, err := s.store.UserOrders(c.Request.Context(), c.GetString(customerIDKey), after, limit+1)
	if err != nil {
		writeError(c, err)
		return
	}
	var next *string
	if len(orders) > limit {
		orders = orders[:limit]
		last := orders[limit-1]
		cur := formatOrderCursor(store.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID})
		next = &cur
	}
	views := make([]orderView, len(orders))
	for i, o := range orders {
		views[i] = orderViewOf(o)
	}
	c.JSON(http.StatusOK, gin.H{"orders": views, "next_cursor": next})
}

// formatOrderCursor makes an opaque cursor: the last order's creation time (to the
// microsecond PostgreSQL keeps) and id.
func formatOrderCursor(cur store.OrderCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(cur.CreatedAt.UnixMicro(), 10) + "|" + cur.ID))
}

func parseOrderCursor(raw string) (store.OrderCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return store.OrderCursor{}, false
	}
	micros, id, ok := strings.Cut(string(b), "|")
	if !ok || !subscriptionIDPattern.MatchString(id) {
		return store.OrderCursor{}, false
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || us < 0 {
		return store.OrderCursor{}, false
	}
	return store.OrderCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, true
}

// getMyOrder reads one of the customer's orders.
func (s *server) getMyOrder(c *gin.Context) {
	if o, ok := s.orderParam(c, c.GetString(customerIDKey)); ok {
		c.JSON(http.StatusOK, gin.H{"order": orderViewOf(o)})
	}
}

// orderParam reads the order the :id parameter names, for the customer owner, or for staff
// when owner is empty. It answers the error itself and reports false: 404 order_not_found for
// an order that does not exist, and alike for one that owner does not own.
func (s *server) orderParam(c *gin.Context, owner string) (store.Order, bool) {
	o, err := s.store.OrderByID(c.Request.Context(), strings.ToLower(c.Param("id")))
	if errors.Is(err, store.ErrNotFound) || (err == nil && owner != "" && o.UserID != owner) {
		writeError(c, errOrderNotFound)
		return store.Order{}, false
	}
	if err != nil {
		writeError(c, err)
		return store.Order{}, false
	}
	return o, true
}

// subscriptionSummary is a subscription in the customer's list.
type subscriptionSummary struct {
	ID                string                    `json:"id"`
	Status            domain.SubscriptionStatus `json:"status"`
	SKU               string                    `json:"sku"`
	PlanName          string                    `json:"plan_name"`
	PriceAmount       int64                     `json:"price_amount"`
	Currency          string                    `json:"currency"`
	BillingInterval   string                    `json:"billing_interval"`
	CurrentPeriodEnd  time.Time                 `json:"current_period_end"`
	TrialEnd          *time.Time                `json:"trial_end"`
	CancelAtPeriodEnd bool                      `json:"cancel_at_period_end"`
}

func summaryOf(sub store.Subscription) subscriptionSummary {
	return subscriptionSummary{ID: sub.ID, Status: sub.Status, SKU: sub.SKU, PlanName: sub.PlanName, PriceAmount: sub.PriceAmount,
		Currency: sub.Currency, BillingInterval: sub.BillingInterval, CurrentPeriodEnd: sub.CurrentPeriodEnd.UTC(),
		TrialEnd: utcPtr(sub.TrialEnd), CancelAtPeriodEnd: sub.CancelAtPeriodEnd}
}

// listMySubscriptions lists the customer's subscriptions, newest first.
func (s *server) listMySubscriptions(c *gin.Context) {
	if subs, ok := s.mySubscriptions(c); ok {
		c.JSON(http.StatusOK, gin.H{"subscriptions": subs})
	}
}

// mySubscriptions reads the signed-in customer's subscriptions, newest first; on failure it
// answers the error and reports false.
func (s *server) mySubscriptions(c *gin.Context) ([]subscriptionSummary, bool) {
	subs, err := s.store.UserSubscriptions(c.Request.Context(), c.GetString(customerIDKey))
	if err != nil {
		writeError(c, err)
		return nil, false
	}
	out := make([]subscriptionSummary, len(subs))
	for i, sub := range subs {
		out[i] = summaryOf(sub)
	}
	return out, true
}

// customerSubscription reads subscription id for the signed-in customer. It answers the error
// itself and reports false: 404 subscription_not_found for one that does not exist, and alike
// for another customer's.
func (s *server) customerSubscription(c *gin.Context, id string) (store.Subscription, bool) {
	sub, err := s.store.SubscriptionByID(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.UserID != c.GetString(customerIDKey)) {
		writeError(c, errSubscriptionNotFound)
		return store.Subscription{}, false
	}
	if err != nil {
		writeError(c, err)
		return store.Subscription{}, false
	}
	return sub, true
}
