package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/cartflow/cartflow/internal/billing"
	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/errorreport"
	"github.com/cartflow/cartflow/internal/metrics"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/internal/telemetry"
)

// checkoutStore is what the BFF reads from PostgreSQL; the handler tests fake it.
type checkoutStore interface {
	Ping(ctx context.Context) error
	ListProducts(ctx context.Context) ([]store.Product, error)
	ProductsBySKU(ctx context.Context, skus []string) (map[string]store.Product, error)
	CheckoutByID(ctx context.Context, checkoutID string) (store.Order, error)
	CheckoutByIdempotencyKey(ctx context.Context, key string) (store.Order, error)
	OrderByID(ctx context.Context, id string) (store.Order, error)
	ProviderHealth(ctx context.Context, provider string, since time.Time) (successes, failures int, err error)
	SubscriptionByID(ctx context.Context, id string) (store.Subscription, error)
	SubscriptionHistory(ctx context.Context, id string) ([]store.SubscriptionEvent, error)
	SubscriptionByOrder(ctx context.Context, orderID string) (store.Subscription, error)
	idempotencyKeys
}

// server holds the BFF's long-lived dependencies; handlers are its methods.
type server struct {
	cfg      config.API
	store    checkoutStore
	temporal client.Client
	log      *slog.Logger
	// webhooks verifies each provider's webhooks, by provider name; a provider without one has
	// no webhook endpoint.
	webhooks map[string]billing.WebhookVerifier
	// metrics records HTTP latency and status by route and serves /metrics.
	metrics *metrics.Registry
	// reporter sends panics to Sentry, when configured.
	reporter *errorreport.Reporter
	// telemetry traces each request into the workflows it starts, when configured.
	telemetry *telemetry.Telemetry
	// paypal creates the PayPal orders buyers approve; nil when PayPal is not configured.
	paypal *paypalOrders
}

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz reports whether the BFF's dependencies answer, each within a short deadline.
func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{"postgres": "ok", "temporal": "ok"}
	ready := true
	if err := s.store.Ping(ctx); err != nil {
		checks["postgres"], ready = "unreachable", false
	}
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], ready = "unreachable", false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ready, "checks": checks})
}

func (s *server) listProducts(c *gin.Context) {
	products, err := s.store.ListProducts(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"products": products})
}
