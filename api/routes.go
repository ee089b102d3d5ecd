package main

import (
	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/metrics"
	"github.com/cartflow/cartflow/internal/staffkey"
)

// routes is the whole HTTP surface of the BFF.
func (s *server) routes() *gin.Engine {
	s.limits = newRateLimits(s)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Edge (see edge.go): which peers may name the client's address.
	_ = trustProxies(r, s.cfg)
	origins := allowedOrigins(s.cfg)
	// The security headers come first, so that every answer has them, whatever aborts or panics.
	// Metrics next, so that they also see 404s and requests the middleware after it aborts.
	// Sentry sits inside recoverJSON: it sees a panic first, reports it with the request id and
	// route, and re-panics for recoverJSON to answer 500. The trace starts after the request id
	// is known, so that the access log line carries both. CORS answers preflights, and the CSRF
	// check refuses a forged change, before any route's handler runs.
	r.Use(securityHeaders, s.metrics.Gin(), requestID(), s.telemetry.Gin("/healthz"), accessLog(s.log), recoverJSON(s.log), s.reporter.Gin(),
		origins.cors, origins.csrf)
	r.NoRoute(func(c *gin.Context) { writeError(c, errNotFound) })
	r.NoMethod(func(c *gin.Context) { writeError(c, errMethodNotAllowed) })

	// /readyz and /metrics are on the internal listener only (internalRoutes).
	r.GET("/healthz", s.healthz)

	// Every mutating endpoint takes s.idempotent after limitBody (and after auth): an
	// Idempotency-Key is required, and a repeat gets the first answer (see idempotency.go).
	// The authentication report is the exception: it changes nothing by itself (it prompts the
	// checkout to ask the provider) and answers with the checkout's state at that moment.
	//
	// Rate limits (ratelimit.go): the cheap reads take s.limitReads, in memory per replica; the
	// sensitive writes take s.limitIP(bucket) before s.idempotent (a replay counts too), counted
	// in PostgreSQL across replicas. Per-email limits and the decline check run in the handler,
	// once the body is read: createCheckout, changeSubscription (card changes), limitSignIn and
	// limitStaff for the sign-in and staff handlers.
	v1 := r.Group("/api/v1")
	v1.GET("/products", s.limitReads, s.listProducts)
	v1.POST("/checkouts", s.limitBody, s.limitIP(bucketCheckoutIP), s.idempotent, s.createCheckout)
	v1.GET("/checkouts/:id", s.limitReads, s.getCheckout)
	v1.POST("/checkouts/:id/authentication", s.limitBody, s.completeAuthentication)
	v1.GET("/payment-config", s.limitReads, s.paymentConfig)
	v1.POST("/paypal/orders", s.limitBody, s.limitIP(bucketPayPalOrderIP), s.idempotent, s.createPayPalOrder)

	// Sign-in by magic link (auth.go); neither takes an Idempotency-Key (see there).
	auth := v1.Group("/auth")
	auth.POST("/sign-in-links", s.limitBody, s.requestSignInLink)
	auth.POST("/sessions", s.limitBody, s.createSession)
	auth.DELETE("/sessions/current", s.customer, s.signOut)
	auth.DELETE("/sessions", s.customer, s.signOutEverywhere)

	// The signed-in customer's own account (me.go): each route needs a session, and every
	// resource in it is checked to be the customer's.
	me := v1.Group("/me", s.customer)
	me.GET("", s.getMe)
	me.PATCH("", s.limitBody, s.idempotent, s.updateMe)
	me.GET("/orders", s.listMyOrders)
	me.GET("/orders/:id", s.getMyOrder)
	me.GET("/subscriptions", s.listMySubscriptions)
	// Each checks ownership (customerSubscription); a change once its request is valid.
	me.GET("/subscriptions/:id", s.getSubscription)
	me.POST("/subscriptions/:id/cancel", s.limitBody, s.idempotent, s.cancelSubscription)
	me.POST("/subscriptions/:id/resume", s.limitBody, s.idempotent, s.resumeSubscription)
	me.PUT("/subscriptions/:id/payment-method", s.limitBody, s.idempotent, s.changePaymentMethod)

	// Staff routes: each needs a staff key with its scope (internal/staffkey), and each request
	// past authentication is written to staff_audit (api/staff.go). s.staff comes before
	// s.idempotent, so that a caller without a key cannot take an Idempotency-Key.
	v1.POST("/orders/:id/refunds", s.staff(staffkey.ScopeRefunds, actionRefundCreate), s.limitBody, s.idempotent, s.createRefund)
	v1.GET("/staff/orders/:id", s.staff(staffkey.ScopeOrdersRead, actionOrderRead), s.staffOrder)
	v1.GET("/staff/audit", s.staff(staffkey.ScopeOps, actionAuditRead), s.staffAudit)

	r.POST("/webhooks/:provider", s.limitBody, s.receiveWebhook)
	return r
}

// internalRoutes is what the internal listener (INTERNAL_HTTP_ADDR) serves: readiness for the
// load balancer and metrics for Prometheus, which the public listener does not.
func (s *server) internalRoutes() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(securityHeaders, recoverJSON(s.log))
	r.NoRoute(func(c *gin.Context) { writeError(c, errNotFound) })
	r.NoMethod(func(c *gin.Context) { writeError(c, errMethodNotAllowed) })
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(s.metrics.Handler()))
	if s.cfg.PprofEnabled {
		r.GET("/debug/pprof/*page", gin.WrapH(metrics.Profiler()))
	}
	return r
}
