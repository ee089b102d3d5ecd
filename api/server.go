package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

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
	RecordAcceptedCheckout(ctx context.Context, checkoutID, idempotencyKey string) error
	IsAcceptedCheckout(ctx context.Context, checkoutID string) (bool, error)
	OrderByID(ctx context.Context, id string) (store.Order, error)
	ProviderHealth(ctx context.Context, provider string, since time.Time) (successes, failures int, err error)
	SubscriptionByID(ctx context.Context, id string) (store.Subscription, error)
	SubscriptionHistory(ctx context.Context, id string) ([]store.SubscriptionEvent, error)
	SubscriptionByOrder(ctx context.Context, orderID string) (store.Subscription, error)
	idempotencyKeys
	rateStore
	staffStore
	identityStore
}

// identityStore is the part of the store behind sign-in and /api/v1/me.
type identityStore interface {
	SignInWithToken(ctx context.Context, token, replaced string, lifetime time.Duration) (store.SignIn, error)
	SessionByToken(ctx context.Context, token string, idle time.Duration) (store.Session, error)
	RevokeSession(ctx context.Context, token string) error
	RevokeUserSessions(ctx context.Context, userID string) (int64, error)
	UserByID(ctx context.Context, id string) (store.User, error)
	RenameUser(ctx context.Context, id, name string) (store.User, error)
	UserOrders(ctx context.Context, userID string, after store.OrderCursor, limit int) ([]store.Order, error)
	UserSubscriptions(ctx context.Context, userID string) ([]store.Subscription, error)
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
	// limits are the rate limits and the card-testing defence's; routes builds them.
	limits *rateLimits
	// dataConverter is the Temporal client's, with the payload codec: memos the BFF reads from a
	// workflow's description are encrypted like every payload. Nil means the SDK's default.
	dataConverter converter.DataConverter
}

// payloads is the converter memos are read with.
func (s *server) payloads() converter.DataConverter {
	if s.dataConverter == nil {
		return converter.GetDefaultDataConverter()
	}
	return s.dataConverter
}

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz reports each dependency of the BFF, checked side by side within a short deadline:
// 200 {"status":"ok"} when all answer, else 503 {"status":"unavailable"} with Retry-After and the
// one that is down, so that a load balancer stops sending traffic and ops see which it is.
func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	probes := map[string]func(context.Context) error{
		"postgres": s.store.Ping,
		"temporal": func(ctx context.Context) error {
			_, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
	}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		checks = make(map[string]string, len(probes))
		ready  = true
	)
	for name, probe := range probes {
		wg.Go(func() {
			err := probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			checks[name] = "ok"
			if err != nil {
				s.log.WarnContext(ctx, "readiness check failed", "dependency", name, "error", err)
				checks[name], ready = "down", false
			}
		})
	}
	wg.Wait()
	if !ready {
		c.Header("Retry-After", strconv.Itoa(retryAfterSeconds))
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "ready": false, "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "ready": true, "checks": checks})
}

func (s *server) listProducts(c *gin.Context) {
	products, err := s.store.ListProducts(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"products": products})
}
