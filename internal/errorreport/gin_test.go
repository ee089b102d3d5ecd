package errorreport

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// engine builds the BFF's middleware order: request id, then the recover middleware that
// answers 500, then the Sentry middleware. recovered receives what the recover middleware caught.
func engine(rep *Reporter, recovered *any) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Set(RequestIDKey, c.GetHeader("X-Request-Id"))
		c.Next()
	}, func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				*recovered = p
				c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": "internal"}})
			}
		}()
		c.Next()
	}, rep.Gin())
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.POST("/api/v1/checkouts/:id/authentication", func(c *gin.Context) {
		body, _ := c.GetRawData() // read, so the SDK would have buffered it
		panic("handler failed on " + string(body))
	})
	return r
}

// panicRequest carries everything the scrubber must keep out of Sentry.
func panicRequest() *http.Request {
	req := httptest.NewRequest(http.MethodPost,
		"/api/v1/checkouts/chk_01jb7yq2secretcheckout/authentication?email=ada%40example.com&token=pm_card_visa",
		strings.NewReader(`{"email":"ada@example.com","payment":{"token":"pm_card_visa"}}`))
	req.Header.Set("X-Request-Id", "req-7f3a")
	req.Header.Set("Authorization", "Bearer staffkey0123456789")
	req.Header.Set("X-API-Key", "staffkey0123456789")
	req.Header.Set("Idempotency-Key", "idem-key-0123456789")
	req.Header.Set("Stripe-Signature", "t=1,v1=abcdef")
	req.Header.Set("PAYPAL-TRANSMISSION-SIG", "sigsigsig")
	req.Header.Set("Cookie", "session=s3cr3t")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestGinReportsPanicOnceAndRepanics(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	var recovered any
	r := engine(rep, &recovered)

	// A request that does not panic sends nothing.
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("healthz: %d", w.Code)
	}

	w = httptest.NewRecorder()
	r.ServeHTTP(w, panicRequest())
	flush(t, rep)

	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), `"internal"`) {
		t.Fatalf("the recover middleware did not answer: %d %s", w.Code, w.Body)
	}
	if s, _ := recovered.(string); !strings.HasPrefix(s, "handler failed on ") {
		t.Fatalf("the panic did not reach the recover middleware after Sentry: %#v", recovered)
	}
	e := srv.oneEvent(t)
	if e.Tags[TagRoute] != "/api/v1/checkouts/:id/authentication" || e.Tags[TagRequestID] != "req-7f3a" {
		t.Errorf("tags: %v", e.Tags)
	}
	if e.Release != "cartflow@test" || e.Env != "test" {
		t.Errorf("release %q environment %q", e.Release, e.Env)
	}
	if e.Request == nil {
		t.Fatal("event without request")
	}
	if e.Request.URL != "http://example.com/api/v1/checkouts/:id/authentication" {
		t.Errorf("request URL %q: want the route, not the checkout id", e.Request.URL)
	}
	if e.Request.Data != "" || e.Request.QueryString != "" || e.Request.Cookies != "" {
		t.Errorf("request body, query or cookies sent: %+v", e.Request)
	}
	for k := range e.Request.Headers {
		switch strings.ToLower(k) {
		case "authorization", "x-api-key", "idempotency-key", "stripe-signature", "paypal-transmission-sig", "cookie", "x-forwarded-for":
			t.Errorf("header %s sent", k)
		}
	}
	if e.Request.Headers["Content-Type"] != "application/json" {
		t.Errorf("harmless headers dropped too: %v", e.Request.Headers)
	}
	// Whatever field it might hide in, nothing sensitive reached the server.
	_, raw := srv.Requests()
	for _, leak := range []string{"ada@example.com", "ada%40example.com", "pm_card_visa", "staffkey0123456789",
		"idem-key-0123456789", "s3cr3t", "203.0.113.9", "chk_01jb7yq2secretcheckout", "sigsigsig"} {
		if strings.Contains(raw, leak) {
			t.Errorf("%q reached Sentry", leak)
		}
	}
}

func TestGinWithoutPanicRequestsNothing(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	var recovered any
	r := engine(rep, &recovered)
	for range 3 {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	}
	flush(t, rep)
	srv.wantNoRequests(t, "without a panic")
}

func TestGinAbortHandlerIsNotReported(t *testing.T) {
	srv := newSentryServer(t)
	rep := newReporter(t, srv)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	var recovered any
	r.Use(func(c *gin.Context) {
		defer func() { recovered = recover() }()
		c.Next()
	}, rep.Gin())
	r.GET("/stream", func(*gin.Context) { panic(http.ErrAbortHandler) })
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/stream", nil))
	flush(t, rep)
	if recovered != http.ErrAbortHandler {
		t.Fatalf("ErrAbortHandler not re-panicked: %#v", recovered)
	}
	if n := len(srv.Events()); n != 0 {
		t.Fatalf("ErrAbortHandler reported: %d events", n)
	}
}
