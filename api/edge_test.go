package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/cartflow/cartflow/internal/config"
	"github.com/cartflow/cartflow/internal/metrics"
)

// edgeEnv is a test server with cfg's edge settings, and the public router with two probe
// routes: one that echoes c.ClientIP(), one that counts the changes that reached it.
func edgeEnv(t *testing.T, edit func(*config.API)) (*testEnv, *gin.Engine, *atomic.Int32) {
	t.Helper()
	env := newTestEnv(t)
	if edit != nil {
		edit(&env.server.cfg)
	}
	r := env.server.routes()
	var reached atomic.Int32
	r.GET("/__test/ip", func(c *gin.Context) { c.String(http.StatusOK, c.ClientIP()) })
	r.POST("/api/v1/__test/change", func(c *gin.Context) { reached.Add(1); c.Status(http.StatusNoContent) })
	r.GET("/api/v1/__test/panic", func(*gin.Context) { panic("boom") })
	env.handler = r
	return env, r, &reached
}

func TestClientIPTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		proxies  []string
		platform string
		peer     string
		header   map[string]string
		want     string
	}{
		{name: "no trusted proxy: X-Forwarded-For ignored", peer: "10.0.0.5:4711",
			header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: "10.0.0.5"},
		{name: "no trusted proxy: X-Real-IP ignored", peer: "10.0.0.5:4711",
			header: map[string]string{"X-Real-IP": "203.0.113.9"}, want: "10.0.0.5"},
		{name: "no platform: CF-Connecting-IP ignored", peer: "10.0.0.5:4711",
			header: map[string]string{"CF-Connecting-IP": "203.0.113.9"}, want: "10.0.0.5"},
		{name: "from a trusted proxy", proxies: []string{"10.0.0.0/8"}, peer: "10.0.0.5:4711",
			header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: "203.0.113.9"},
		{name: "a trusted proxy by address", proxies: []string{"10.0.0.5"}, peer: "10.0.0.5:4711",
			header: map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "from a peer that is not a trusted proxy", proxies: []string{"10.0.0.0/8"}, peer: "192.0.2.7:4711",
			header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: "192.0.2.7"},
		{name: "the configured platform's header", platform: "CF-Connecting-IP", peer: "10.0.0.5:4711",
			header: map[string]string{"CF-Connecting-IP": "203.0.113.9"}, want: "203.0.113.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _, _ := edgeEnv(t, func(c *config.API) { c.TrustedProxies, c.TrustedPlatform = tc.proxies, tc.platform })
			req := httptest.NewRequest(http.MethodGet, "/__test/ip", nil)
			req.RemoteAddr = tc.peer
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if got := serve(env.handler, req).Body.String(); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidateEdgeRefusesBadSettings(t *testing.T) {
	t.Parallel()
	good := config.API{Common: config.Common{StorefrontURL: "http://localhost:3000"}}
	if err := validateEdge(good); err != nil {
		t.Fatalf("validateEdge(defaults) = %v", err)
	}
	for name, edit := range map[string]func(*config.API){
		"a proxy that is no address":  func(c *config.API) { c.TrustedProxies = []string{"gateway"} },
		"an origin that is no origin": func(c *config.API) { c.CORSAllowedOrigins = []string{"shop.example"} },
		"a storefront that is no URL": func(c *config.API) { c.StorefrontURL = "/shop" },
	} {
		c := good
		edit(&c)
		if err := validateEdge(c); err == nil {
			t.Errorf("%s: validateEdge accepted it", name)
		}
	}
}

// TestSecurityHeadersOnEveryAnswer: nosniff on every answer, errors and panics included;
// no-store on everything but the public reads.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		method, path string
		status       int
		noStore      bool
	}{
		{http.MethodGet, "/api/v1/products", http.StatusOK, false},
		{http.MethodGet, "/healthz", http.StatusOK, false},
		{http.MethodGet, "/no/such/route", http.StatusNotFound, true},
		{http.MethodDelete, "/api/v1/products", http.StatusMethodNotAllowed, true},
		{http.MethodGet, "/api/v1/checkouts/ck_missing", http.StatusNotFound, true},
		{http.MethodGet, "/api/v1/me", http.StatusUnauthorized, true},
		{http.MethodGet, "/api/v1/auth/anything", http.StatusNotFound, true},
		{http.MethodGet, "/api/v1/__test/panic", http.StatusInternalServerError, true},
		{http.MethodPost, "/api/v1/checkouts", http.StatusBadRequest, true},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			env, _, _ := edgeEnv(t, nil)
			rec := serve(env.handler, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			h := rec.Header()
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if got := h.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy = %q, want no-referrer", got)
			}
			if got := h.Get("Cache-Control") == "no-store"; got != tc.noStore {
				t.Errorf("Cache-Control = %q, want no-store %v", h.Get("Cache-Control"), tc.noStore)
			}
		})
	}
}

// TestReadinessAndMetricsAreInternal: the public listener no longer serves /readyz and
// /metrics; the internal one does, and /healthz stays public.
func TestReadinessAndMetricsAreInternal(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.server.metrics = metrics.New()
	public, internal := env.server.routes(), env.server.internalRoutes()
	for _, path := range []string{"/readyz", "/metrics"} {
		if rec := get(public, path); rec.Code != http.StatusNotFound {
			t.Errorf("public GET %s = %d, want 404", path, rec.Code)
		}
	}
	if rec := get(public, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("public GET /healthz = %d, want 200", rec.Code)
	}
	rec := get(internal, "/metrics")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "# TYPE") {
		t.Errorf("internal GET /metrics = %d %.200s, want the exposition", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("internal X-Content-Type-Options = %q, want nosniff", got)
	}
}

// TestProfilerOnlyWhenEnabledAndOnlyInternal: PPROF_ENABLED serves /debug/pprof/ on the
// internal listener; without it neither listener does, and the public one never does.
func TestProfilerOnlyWhenEnabledAndOnlyInternal(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.server.metrics = metrics.New()
	if rec := get(env.server.internalRoutes(), "/debug/pprof/"); rec.Code != http.StatusNotFound {
		t.Errorf("internal GET /debug/pprof/ with the profiler off = %d, want 404", rec.Code)
	}
	env.server.cfg.PprofEnabled = true
	if rec := get(env.server.routes(), "/debug/pprof/"); rec.Code != http.StatusNotFound {
		t.Errorf("public GET /debug/pprof/ = %d, want 404", rec.Code)
	}
	rec := get(env.server.internalRoutes(), "/debug/pprof/")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("internal GET /debug/pprof/ with the profiler on = %d %.200s, want the index", rec.Code, rec.Body)
	}
}

func preflight(origin, method string) *http.Request {
	req := httptest.NewRequest(http.MethodOptions, "/api/v1/checkouts", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", "content-type, idempotency-key")
	return req
}

func TestCORSAllowsTheStorefrontOnly(t *testing.T) {
	t.Parallel()
	env, _, _ := edgeEnv(t, nil) // STOREFRONT_URL https://shop.example

	rec := serve(env.handler, preflight("https://shop.example", http.MethodPost))
	h := rec.Header()
	if rec.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight from the storefront = %d %v, want 204 allowing it with credentials", rec.Code, h)
	}
	for _, want := range []string{"Content-Type", "Idempotency-Key"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Access-Control-Allow-Headers = %q, want %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("Access-Control-Allow-Methods = %q, want POST", h.Get("Access-Control-Allow-Methods"))
	}

	rec = serve(env.handler, preflight("https://evil.example", http.MethodPost))
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" || rec.Code == http.StatusNoContent {
		t.Errorf("preflight from another origin = %d, ACAO %q; want no ACAO and no 204", rec.Code, got)
	}

	for origin, want := range map[string]string{"https://shop.example": "https://shop.example", "https://evil.example": "",
		"https://shop.example.evil.example": ""} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/products", nil)
		req.Header.Set("Origin", origin)
		rec := serve(env.handler, req)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("GET from %s: ACAO %q, want %q", origin, got, want)
		}
		if !strings.Contains(strings.Join(rec.Header().Values("Vary"), ","), "Origin") {
			t.Errorf("GET from %s: no Vary: Origin", origin)
		}
	}
}

func TestCORSDefaultOrigins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    config.API
		origin string
		want   bool
	}{
		{"storefront", config.API{Common: config.Common{StorefrontURL: "http://localhost:3000"}}, "http://localhost:3000", true},
		{"its 127.0.0.1 twin in development", config.API{Common: config.Common{StorefrontURL: "http://localhost:3000"}}, "http://127.0.0.1:3000", true},
		{"no twin in production", config.API{Common: config.Common{Env: config.EnvProduction, StorefrontURL: "http://localhost:3000"}},
			"http://127.0.0.1:3000", false},
		{"another port", config.API{Common: config.Common{StorefrontURL: "http://localhost:3000"}}, "http://localhost:3001", false},
		{"the configured list replaces the storefront", config.API{Common: config.Common{StorefrontURL: "http://localhost:3000"},
			CORSAllowedOrigins: []string{"https://shop.example"}}, "http://localhost:3000", false},
		{"the configured list", config.API{Common: config.Common{StorefrontURL: "http://localhost:3000"},
			CORSAllowedOrigins: []string{"https://Shop.example/"}}, "https://shop.example", true},
	} {
		if got := allowedOrigins(tc.cfg).allowed(tc.origin); got != tc.want {
			t.Errorf("%s: %s allowed = %v, want %v", tc.name, tc.origin, got, tc.want)
		}
	}
}

// TestCSRFRefusesCookieChangesFromOtherOrigins: a change carrying the session cookie must show
// it comes from the storefront; a refused one reaches no handler.
func TestCSRFRefusesCookieChangesFromOtherOrigins(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		method  string
		path    string
		cookie  bool
		header  map[string]string
		refused bool
	}{
		{name: "cookie, allowed Origin", cookie: true, header: map[string]string{"Origin": "https://shop.example"}},
		{name: "cookie, another Origin", cookie: true, header: map[string]string{"Origin": "https://evil.example"}, refused: true},
		{name: "cookie, Origin null", cookie: true, header: map[string]string{"Origin": "null"}, refused: true},
		{name: "cookie, another Origin with an allowed Referer", cookie: true,
			header: map[string]string{"Origin": "https://evil.example", "Referer": "https://shop.example/cart"}, refused: true},
		{name: "cookie, allowed Referer", cookie: true, header: map[string]string{"Referer": "https://shop.example/account?tab=1"}},
		{name: "cookie, another Referer", cookie: true, header: map[string]string{"Referer": "https://evil.example/shop.example"}, refused: true},
		{name: "cookie, same-origin fetch", cookie: true, header: map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{name: "cookie, same-site fetch", cookie: true, header: map[string]string{"Sec-Fetch-Site": "same-site"}},
		{name: "cookie, cross-site fetch", cookie: true, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, refused: true},
		{name: "cookie, nothing says where from", cookie: true, refused: true},
		{name: "cookie, PUT from another Origin", method: http.MethodPut, cookie: true,
			header: map[string]string{"Origin": "https://evil.example"}, refused: true},
		{name: "no cookie, another Origin (login CSRF)", header: map[string]string{"Origin": "https://evil.example"}, refused: true},
		{name: "no cookie, nothing says where from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _, reached := edgeEnv(t, nil)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := env.handler.(*gin.Engine)
			r.PUT("/api/v1/__test/change", func(c *gin.Context) { reached.Add(1); c.Status(http.StatusNoContent) })
			req := httptest.NewRequest(method, "/api/v1/__test/change", strings.NewReader("{}"))
			if tc.cookie {
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "opaque"})
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := serve(env.handler, req)
			if !tc.refused {
				if rec.Code != http.StatusNoContent || reached.Load() != 1 {
					t.Errorf("= %d %s (handler reached %d times), want it through", rec.Code, rec.Body, reached.Load())
				}
				return
			}
			var body struct{ Error errorBody }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != http.StatusForbidden || body.Error.Code != "origin_not_allowed" {
				t.Errorf("= %d %s, want 403 origin_not_allowed", rec.Code, rec.Body)
			}
			if n := reached.Load(); n != 0 {
				t.Errorf("the handler ran %d times", n)
			}
		})
	}
}

// TestCSRFStopsARealChangeBeforeItStarts: a forged cancel with the cookie touches neither the
// database nor Temporal, and a webhook is never checked.
func TestCSRFStopsARealChangeBeforeItStarts(t *testing.T) {
	t.Parallel()
	env, _, _ := edgeEnv(t, nil)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/subscriptions/sub_1/cancel", strings.NewReader("{}"))
	req.Header.Set("Idempotency-Key", testKey)
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "opaque"})
	if rec := serve(env.handler, req); rec.Code != http.StatusForbidden {
		t.Errorf("forged cancel = %d %s, want 403", rec.Code, rec.Body)
	}
	env.store.mu.Lock()
	calls := len(env.store.calls)
	env.store.mu.Unlock()
	env.store.keysMu.Lock()
	keys := len(env.store.keys)
	env.store.keysMu.Unlock()
	if calls != 0 || keys != 0 {
		t.Errorf("the store got calls %v and claimed %d Idempotency-Keys; want none", env.store.calls, keys)
	}
	env.assertTemporalUntouched(t)

	req = httptest.NewRequest(http.MethodPost, "/webhooks/acme", strings.NewReader("{}"))
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "opaque"})
	if rec := serve(env.handler, req); rec.Code == http.StatusForbidden {
		t.Errorf("a webhook with a cookie from another origin = 403; webhooks are never CSRF-checked")
	}
}
