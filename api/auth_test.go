package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/cartflow/cartflow/internal/domain"
	"github.com/cartflow/cartflow/internal/store"
	"github.com/cartflow/cartflow/workflows"
)

func jsonRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestSignInLinkAnswersTheSameForKnownAndUnknownAddresses: every well-formed address starts one
// SignInLink workflow with the standardized address and gets one body, so that the answer tells
// nobody who is a customer; the activity alone decides whether an email goes out.
func TestSignInLinkAnswersTheSameForKnownAndUnknownAddresses(t *testing.T) {
	env := newTestEnv(t)
	var mu sync.Mutex
	var started []workflows.SignInLinkRequest
	env.temporal.On("ExecuteWorkflow", mock.Anything, mock.Anything, workflows.SignInLinkWorkflowType, mock.Anything).
		Return(func(_ context.Context, opts client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
			mu.Lock()
			defer mu.Unlock()
			if !strings.HasPrefix(opts.ID, "sign-in-link-") || opts.TaskQueue != workflows.TaskQueue {
				t.Errorf("start options %+v", opts)
			}
			started = append(started, args[0].(workflows.SignInLinkRequest))
			return mocks.NewWorkflowRun(t), nil
		})
	var bodies []string
	for _, email := range []string{" Ann@Example.com ", "nobody@example.com"} {
		rec := serve(env.handler, jsonRequest(http.MethodPost, "/api/v1/auth/sign-in-links", `{"email":"`+email+`","next":"/account/orders"}`))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("%q: %d %s", email, rec.Code, rec.Body)
		}
		bodies = append(bodies, rec.Body.String())
	}
	if bodies[0] != bodies[1] {
		t.Errorf("known and unknown addresses answer differently:\n%s\n%s", bodies[0], bodies[1])
	}
	if len(started) != 2 || started[0].Email != "ann@example.com" || started[1].Email != "nobody@example.com" || started[0].Next != "/account/orders" {
		t.Errorf("started %+v", started)
	}
}

func TestSignInLinkRefusesBadInputAndStartsNothing(t *testing.T) {
	for name, tc := range map[string]struct{ body, code, field string }{
		"not an email":       {`{"email":"ann"}`, "invalid_email", "email"},
		"another site":       {`{"email":"ann@example.com","next":"//evil.example/x"}`, "invalid_next", "next"},
		"a full URL":         {`{"email":"ann@example.com","next":"https://evil.example"}`, "invalid_next", "next"},
		"a path that climbs": {`{"email":"ann@example.com","next":"/account/../admin"}`, "invalid_next", "next"},
		"unknown field":      {`{"email":"ann@example.com","password":"x"}`, "unknown_field", "password"},
		"NUL in the email":   {`{"email":"ann\u0000@example.com"}`, "invalid_text", "email"},
	} {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := serve(env.handler, jsonRequest(http.MethodPost, "/api/v1/auth/sign-in-links", tc.body))
			got := decodeError(t, rec, rec.Code)
			if rec.Code < 400 || rec.Code >= 500 || got.Code != tc.code || got.Field != tc.field {
				t.Errorf("%d %+v, want 4xx %s on %s", rec.Code, got, tc.code, tc.field)
			}
			env.assertTemporalUntouched(t)
		})
	}
}

// sessionCookieOf returns the session cookie rec sets.
func sessionCookieOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", sessionCookie, rec.Header())
	return nil
}

func TestSignInWithALinkSetsAProtectedCookieOnce(t *testing.T) {
	env := newTestEnv(t)
	const token = "link-token-0123456789abcdefghijklmnopqrstuv"
	env.store.signIns[token] = subOwner

	rec := serve(env.handler, jsonRequest(http.MethodPost, "/api/v1/auth/sessions", `{"token":"`+token+`"}`))
	if rec.Code != http.StatusCreated {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	c := sessionCookieOf(t, rec)
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !c.Secure || c.Path != "/" || c.Value == "" || c.Value == token {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Secure (the storefront is https), a new secret", c)
	}
	var body struct {
		Customer customerView `json:"customer"`
		Next     string       `json:"next"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Customer.ID != subOwner || body.Next != "/account" {
		t.Errorf("body %s (%v)", rec.Body, err)
	}
	// The cookie works, and the link does not work twice.
	if rec := serve(env.handler, withSession(httptest.NewRequest(http.MethodGet, "/api/v1/me", nil), c.Value)); rec.Code != http.StatusOK {
		t.Errorf("GET /me with the new session: %d %s", rec.Code, rec.Body)
	}
	rec = serve(env.handler, jsonRequest(http.MethodPost, "/api/v1/auth/sessions", `{"token":"`+token+`"}`))
	if got := decodeError(t, rec, http.StatusUnauthorized); got.Code != "sign_in_link_invalid" || got.Field != "token" {
		t.Errorf("second use: %+v", got)
	}
}

func TestSessionCookieIsNotSecureOnlyOnLoopback(t *testing.T) {
	for url, secure := range map[string]bool{"http://localhost:3000": false, "http://127.0.0.1:3000": false,
		"https://shop.example": true, "http://localhost.evil.example": true} {
		env := newTestEnv(t)
		env.server.cfg.StorefrontURL = url
		const token = "link-token-0123456789abcdefghijklmnopqrstuv"
		env.store.signIns[token] = subOwner
		rec := serve(env.server.routes(), jsonRequest(http.MethodPost, "/api/v1/auth/sessions", `{"token":"`+token+`"}`))
		if c := sessionCookieOf(t, rec); c.Secure != secure {
			t.Errorf("storefront %s: Secure = %v, want %v", url, c.Secure, secure)
		}
	}
}

// customerRoute is one route of the customer's account, as a request by the holder of session.
type customerRoute struct {
	name       string
	method     string
	path       string
	body       string
	idempotent bool
}

func (r customerRoute) request(session string) *http.Request {
	req := jsonRequest(r.method, r.path, r.body)
	if r.idempotent {
		req.Header.Set("Idempotency-Key", newRandomID("key-"))
	}
	if session != "" {
		req = withSession(req, session)
	}
	return req
}

// aliceRoutes are every /me route aimed at Ann's (subOwner's) order and subscription.
func aliceRoutes(orderID string) []customerRoute {
	return []customerRoute{
		{"read the order", http.MethodGet, "/api/v1/me/orders/" + orderID, "", false},
		{"read the subscription", http.MethodGet, "/api/v1/me/subscriptions/" + sub1, "", false},
		{"cancel", http.MethodPost, "/api/v1/me/subscriptions/" + sub1 + "/cancel", `{"at_period_end":true}`, true},
		{"resume", http.MethodPost, "/api/v1/me/subscriptions/" + sub1 + "/resume", "", true},
		{"replace the card", http.MethodPut, "/api/v1/me/subscriptions/" + sub1 + "/payment-method", `{"provider":"stripe","token":"pm_card_visa"}`, true},
	}
}

// TestAnotherCustomersResourcesDoNotExist is the authorization matrix: Bea, signed in, aims each
// /me route at Ann's order and subscription and gets the 404 an unknown id gets, with nothing
// started; without a session, with an unknown or revoked one, or after signing out, every /me
// route answers 401.
func TestAnotherCustomersResourcesDoNotExist(t *testing.T) {
	const orderID = "0c0ffee0-0000-4000-8000-000000000001"
	env := newTestEnv(t)
	env.store.putSubscription(testSubscription(), testHistory()...)
	env.store.addOrder(store.Order{ID: orderID, CheckoutID: checkout1, UserID: subOwner, Status: domain.OrderCompleted, TotalAmount: 1200, Currency: "EUR"})
	bea := env.store.sessionFor("7e57e57e-0000-4000-8000-00000000bea0", "bea@example.com")

	for _, r := range aliceRoutes(orderID) {
		rec := serve(env.handler, r.request(bea))
		got := decodeError(t, rec, http.StatusNotFound)
		if got.Code != "order_not_found" && got.Code != "subscription_not_found" {
			t.Errorf("Bea: %s: %+v", r.name, got)
		}
		// Ann's own session reaches the same resource, so the 404 is the ownership check.
		if r.method == http.MethodGet {
			if rec := serve(env.handler, r.request(ownerSession)); rec.Code != http.StatusOK {
				t.Errorf("Ann: %s: %d %s", r.name, rec.Code, rec.Body)
			}
		}
	}
	env.assertTemporalUntouched(t)

	// Bea's lists hold nothing of Ann's.
	for _, path := range []string{"/api/v1/me/orders", "/api/v1/me/subscriptions", "/api/v1/me"} {
		rec := serve(env.handler, customerRoute{method: http.MethodGet, path: path}.request(bea))
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), orderID) || strings.Contains(rec.Body.String(), sub1) {
			t.Errorf("Bea's %s: %d %s", path, rec.Code, rec.Body)
		}
	}

	everyRoute := append(aliceRoutes(orderID),
		customerRoute{"profile", http.MethodGet, "/api/v1/me", "", false},
		customerRoute{"rename", http.MethodPatch, "/api/v1/me", `{"name":"Mallory"}`, true},
		customerRoute{"orders", http.MethodGet, "/api/v1/me/orders", "", false},
		customerRoute{"subscriptions", http.MethodGet, "/api/v1/me/subscriptions", "", false},
		customerRoute{"sign out everywhere", http.MethodDelete, "/api/v1/auth/sessions", "", false},
	)
	// Bea signs out; her cookie is then as good as a forged one.
	if rec := serve(env.handler, customerRoute{method: http.MethodDelete, path: "/api/v1/auth/sessions/current"}.request(bea)); rec.Code != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", rec.Code, rec.Body)
	}
	for who, session := range map[string]string{"no session": "", "forged": store.NewSecret(), "malformed": "x", "signed out": bea} {
		for _, r := range everyRoute {
			rec := serve(env.handler, r.request(session))
			got := decodeError(t, rec, http.StatusUnauthorized)
			want := "session_invalid"
			if session == "" {
				want = "session_required"
			}
			if got.Code != want {
				t.Errorf("%s: %s: %+v, want %s", who, r.name, got, want)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %s: Cache-Control %q", who, r.name, rec.Header().Get("Cache-Control"))
			}
		}
	}
	env.assertTemporalUntouched(t)
}

func TestSignOutEverywhereRevokesEverySession(t *testing.T) {
	env := newTestEnv(t)
	second := env.store.sessionFor(subOwner, subEmail)
	rec := serve(env.handler, customerRoute{method: http.MethodDelete, path: "/api/v1/auth/sessions"}.request(second))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"revoked_sessions":2`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	for _, s := range []string{ownerSession, second} {
		if rec := serve(env.handler, customerRoute{method: http.MethodGet, path: "/api/v1/me"}.request(s)); rec.Code != http.StatusUnauthorized {
			t.Errorf("after signing out everywhere: %d", rec.Code)
		}
	}
}

func TestMyOrdersPageWithACursor(t *testing.T) {
	env := newTestEnv(t)
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		env.store.addOrder(store.Order{ID: "0c0ffee0-0000-4000-8000-00000000000" + string(rune('1'+i)), CheckoutID: "chk_" + string(rune('a'+i)),
			UserID: subOwner, Status: domain.OrderCompleted, TotalAmount: int64(100 * (i + 1)), Currency: "EUR", CreatedAt: base.Add(time.Duration(i) * time.Hour)})
	}
	var seen []int64
	path := "/api/v1/me/orders?limit=2"
	for pages := 0; pages < 5; pages++ {
		rec := serve(env.handler, customerRoute{method: http.MethodGet, path: path}.request(ownerSession))
		var page struct {
			Orders     []orderView `json:"orders"`
			NextCursor *string     `json:"next_cursor"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &page) != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		for _, o := range page.Orders {
			seen = append(seen, o.Amount)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/api/v1/me/orders?limit=2&cursor=" + *page.NextCursor
	}
	if want := []int64{500, 400, 300, 200, 100}; len(seen) != len(want) || seen[0] != 500 || seen[4] != 100 {
		t.Errorf("amounts newest first = %v, want %v", seen, want)
	}
	for _, bad := range []string{"?limit=0", "?limit=101", "?limit=x", "?cursor=nope", "?cursor=MTIzfGFiYw"} {
		rec := serve(env.handler, customerRoute{method: http.MethodGet, path: "/api/v1/me/orders" + bad}.request(ownerSession))
		if got := decodeError(t, rec, http.StatusBadRequest); got.Field == "" {
			t.Errorf("%s: %+v", bad, got)
		}
	}
}

func TestRenameMe(t *testing.T) {
	env := newTestEnv(t)
	rec := serve(env.handler, customerRoute{method: http.MethodPatch, path: "/api/v1/me", body: `{"name":"  Ann   Smith "}`, idempotent: true}.request(ownerSession))
	if rec.Code != http.StatusOK || env.store.users[subOwner].Name != "Ann Smith" {
		t.Fatalf("%d %s; stored %q", rec.Code, rec.Body, env.store.users[subOwner].Name)
	}
	rec = serve(env.handler, customerRoute{method: http.MethodPatch, path: "/api/v1/me", body: `{"name":"   "}`, idempotent: true}.request(ownerSession))
	if got := decodeError(t, rec, http.StatusUnprocessableEntity); got.Code != "invalid_name" || got.Field != "name" {
		t.Errorf("%+v", got)
	}
}
