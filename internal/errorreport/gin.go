package errorreport

import (
	"github.com/getsentry/sentry-go"
	sentrygin "github.com/getsentry/sentry-go/gin"
	"github.com/gin-gonic/gin"
)

// RequestIDKey is the gin context key under which the BFF's request-id middleware stores the
// request id (api/middleware.go, requestIDKey); the two must stay equal.
const RequestIDKey = "request_id"

// Tags set on BFF events.
const (
	TagRequestID = "request_id"
	TagRoute     = "route"
)

// Gin returns the BFF middleware that reports handler panics to Sentry and then panics again.
//
// Gin runs middleware as nested calls, so a panic unwinds from the handler outwards. This
// middleware must therefore be registered after the request-id middleware (whose id it reads)
// and after the BFF's recover middleware, which turns the panic into a 500 JSON answer: that
// way the panic reaches this middleware first, is reported, and is re-panicked to the recover
// middleware. Registered before the recover middleware, it would never see a panic.
//
// Each request gets its own hub, cloned from the Reporter's, so tags never leak between
// concurrent requests. Without a DSN the middleware only calls the next handler.
func (r *Reporter) Gin() gin.HandlerFunc {
	if !r.Enabled() {
		return func(c *gin.Context) { c.Next() }
	}
	report := sentrygin.New(sentrygin.Options{Repanic: true})
	return func(c *gin.Context) {
		hub := r.hub.Clone()
		scope := hub.Scope()
		if id := c.GetString(RequestIDKey); id != "" {
			scope.SetTag(TagRequestID, id)
		}
		// The route pattern, not the path: paths hold checkout and subscription ids.
		if route := c.FullPath(); route != "" {
			scope.SetTag(TagRoute, route)
		}
		// sentrygin takes the hub from the request's context; without one it would clone the
		// sentry package's global hub, which has no client and sends nothing.
		c.Request = c.Request.WithContext(sentry.SetHubOnContext(c.Request.Context(), hub))
		report(c)
	}
}
