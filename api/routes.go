package main

import (
	"github.com/gin-gonic/gin"
)

// routes is the whole HTTP surface of the BFF.
func (s *server) routes() *gin.Engine {
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
	v1 := r.Group("/api/v1")
	v1.GET("/products", s.listProducts)
	v1.POST("/checkouts", s.limitBody, s.idempotent, s.createCheckout)
	v1.GET("/checkouts/:id", s.getCheckout)
	v1.POST("/checkouts/:id/authentication", s.limitBody, s.completeAuthentication)
	v1.GET("/payment-config", s.paymentConfig)
	v1.POST("/paypal/orders", s.limitBody, s.idempotent, s.createPayPalOrder)
	v1.POST("/orders/:id/refunds", s.staffOnly, s.limitBody, s.idempotent, s.createRefund)
	v1.GET("/subscriptions/:id", s.getSubscription)
	v1.POST("/subscriptions/:id/cancel", s.limitBody, s.idempotent, s.cancelSubscription)
	v1.POST("/subscriptions/:id/resume", s.limitBody, s.idempotent, s.resumeSubscription)
	v1.PUT("/subscriptions/:id/payment-method", s.limitBody, s.idempotent, s.changePaymentMethod)

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
	return r
}
