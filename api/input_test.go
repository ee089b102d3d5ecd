package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
)

func TestCheckoutRefusesSKUsOfAnotherShape(t *testing.T) {
	t.Parallel()
	for _, sku := range []string{"MUG", "Mug", "tshirt_m", "-mug", "mug cup", "mug/../x", "mügg", "'; DROP TABLE products;--",
		strings.Repeat("a", 65)} {
		t.Run(sku, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			body := checkoutJSON(func(m map[string]any) { m["items"] = items(line("mug", 1), line(sku, 1)) })
			rec := postCheckout(env.handler, testKey, body)
			env.assertBadInputRefused(t, rec, http.StatusUnprocessableEntity, "invalid_sku", "items[1].sku")
			env.store.assertCalls(t, "ProductsBySKU", 0)
		})
	}
	t.Run("the longest sku passes the shape check", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t)
		rec := postCheckout(env.handler, testKey, checkoutJSON(func(m map[string]any) { m["items"] = items(line(strings.Repeat("a", 64), 1)) }))
		env.assertBadInputRefused(t, rec, http.StatusUnprocessableEntity, "unknown_sku", "items[0].sku")
	})
}

// Strings that are not text, as the raw JSON spells them: a NUL escape, a raw invalid UTF-8
// byte, an invalid byte sequence (an encoded surrogate) and a lone surrogate escape.
var notText = map[string]string{
	"NUL escape":        `Ada\u0000`,
	"invalid byte":      "Ada\xff",
	"encoded surrogate": "\xed\xa0\x80",
	"lone surrogate":    `\ud83d`,
}

// rawCheckout is a valid checkout body with one string replaced by raw JSON string content.
func rawCheckout(field, raw string) string {
	v := map[string]string{"email": "ada@example.com", "name": "Ada Lovelace", "sku": "tshirt-m", "provider": "stripe", "token": "pm_card_visa"}
	v[field] = raw
	return fmt.Sprintf(`{"email":"%s","name":"%s","items":[{"sku":"mug","quantity":1},{"sku":"%s","quantity":2}],`+
		`"payment":{"provider":"%s","token":"%s"}}`, v["email"], v["name"], v["sku"], v["provider"], v["token"])
}

func TestEveryBodyRefusesStringsThatAreNotText(t *testing.T) {
	t.Parallel()
	type request struct {
		name, method, path, field string
		body                      func(raw string) string
		wantStatus                int
	}
	subPath := "/api/v1/me/subscriptions/" + sub1
	requests := []request{
		{"checkout email", http.MethodPost, "/api/v1/checkouts", "email", func(r string) string { return rawCheckout("email", r) }, 422},
		{"checkout name", http.MethodPost, "/api/v1/checkouts", "name", func(r string) string { return rawCheckout("name", r) }, 422},
		{"checkout sku", http.MethodPost, "/api/v1/checkouts", "items[1].sku", func(r string) string { return rawCheckout("sku", r) }, 422},
		{"checkout provider", http.MethodPost, "/api/v1/checkouts", "payment.provider", func(r string) string { return rawCheckout("provider", r) }, 422},
		{"checkout token", http.MethodPost, "/api/v1/checkouts", "payment.token", func(r string) string { return rawCheckout("token", r) }, 422},
		{"checkout member name", http.MethodPost, "/api/v1/checkouts", "payment", func(r string) string {
			return strings.Replace(rawCheckout("", ""), `"token"`, `"`+r+`"`, 1)
		}, 422},
		{"cancel member name", http.MethodPost, subPath + "/cancel", "body", func(r string) string { return `{"at_period_end":true,"` + r + `":1}` }, 422},
		{"resume body", http.MethodPost, subPath + "/resume", "note", func(r string) string { return `{"note":"` + r + `"}` }, 422},
		{"payment method token", http.MethodPut, subPath + "/payment-method", "token", func(r string) string {
			return `{"provider":"stripe","token":"` + r + `"}`
		}, 422},
		{"payment method provider", http.MethodPut, subPath + "/payment-method", "provider", func(r string) string {
			return `{"provider":"` + r + `","token":"pm_card_visa"}`
		}, 422},
		{"refund", http.MethodPost, "/api/v1/orders/" + paidOrderID + "/refunds", "reason", func(r string) string {
			return `{"amount":100,"reason":"` + r + `"}`
		}, 422},
	}
	for _, rq := range requests {
		for kind, raw := range notText {
			t.Run(rq.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				env, _ := paymentsEnv(t)
				env.store.putSubscription(testSubscription(), testHistory()...)
				req := changeRequest(rq.method, rq.path, testKey, rq.body(raw))
				req.Header.Set("Authorization", "Bearer "+testStaffKey)
				rec := serve(env.handler, req)
				env.assertBadInputRefused(t, rec, rq.wantStatus, "invalid_text", rq.field)
				for _, m := range []string{"ProductsBySKU", "SubscriptionByID", "OrderByID", "CheckoutByIdempotencyKey"} {
					env.store.assertCalls(t, m, 0)
				}
			})
		}
	}
}

func TestHostileJSONIsA4xx(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		wantStatus int
		wantCode   string
	}{
		{"deep nesting", `{"items":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, 400, "malformed_json"},
		{"huge quantity", strings.Replace(validCheckoutBody(), `"quantity":2`, `"quantity":1e400`, 1), 400, "invalid_type"},
		{"quantity past int64", strings.Replace(validCheckoutBody(), `"quantity":2`, `"quantity":92233720368547758070`, 1), 400, "invalid_type"},
		{"raw NUL byte", strings.Replace(validCheckoutBody(), "Ada", "Ada\x00", 1), 400, "malformed_json"},
		{"truncated", validCheckoutBody()[:40], 400, "malformed_json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(t)
			rec := postCheckout(env.handler, testKey, tc.body)
			if got := decodeError(t, rec, tc.wantStatus); got.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", got.Code, tc.wantCode)
			}
			env.assertTemporalUntouched(t)
		})
	}
}

// validCheckoutBody is checkoutJSON(nil) with the quantities spelled as the cases above edit them.
func validCheckoutBody() string { return rawCheckout("", "") }

// Errors as PostgreSQL and Temporal report themselves while they are down.
var dependencyErrors = map[string]error{
	"postgres refuses connections": &pgconn.ConnectError{Config: &pgconn.Config{}},
	"postgres connection refused":  fmt.Errorf("query products: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}),
	"postgres shutting down":       fmt.Errorf("read checkout: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}),
	"postgres starting up":         &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"},
	"postgres connection cut":      fmt.Errorf("read checkout: %w", io.ErrUnexpectedEOF),
	"pool acquire timed out":       fmt.Errorf("query products: %w", context.DeadlineExceeded),
	"temporal unavailable":         serviceerror.NewUnavailable("connection refused"),
	"temporal deadline":            serviceerror.NewDeadlineExceeded("context deadline exceeded"),
}

func TestDependencyDownIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	for name, cause := range dependencyErrors {
		routes := map[string]struct {
			set func(*fakeStore)
			req func() *http.Request
		}{
			"POST checkout": {func(f *fakeStore) { f.productsErr = cause }, func() *http.Request { return newCheckoutRequest(testKey, checkoutJSON(nil)) }},
			"GET checkout": {func(f *fakeStore) { f.byIDErr = cause }, func() *http.Request {
				return changeRequest(http.MethodGet, "/api/v1/checkouts/chk_"+strings.Repeat("a", 26), "", "")
			}},
			"GET subscription": {func(f *fakeStore) { f.subByIDErr = cause }, func() *http.Request {
				return changeRequest(http.MethodGet, "/api/v1/me/subscriptions/"+sub1, "", "")
			}},
			"cancel subscription": {func(f *fakeStore) { f.subByIDErr = cause }, func() *http.Request {
				return changeRequest(http.MethodPost, "/api/v1/me/subscriptions/"+sub1+"/cancel", testKey, `{"at_period_end":true}`)
			}},
		}
		for route, r := range routes {
			t.Run(name+"/"+route, func(t *testing.T) {
				t.Parallel()
				env := newTestEnv(t)
				r.set(env.store)
				rec := serve(env.handler, r.req())
				if got := decodeError(t, rec, http.StatusServiceUnavailable); got.Code != "service_unavailable" {
					t.Errorf("code = %q, want service_unavailable", got.Code)
				}
				if got := rec.Header().Get("Retry-After"); got != "5" {
					t.Errorf("Retry-After = %q, want 5", got)
				}
				if strings.Contains(rec.Body.String(), "57P0") || strings.Contains(rec.Body.String(), "refused") {
					t.Errorf("the response echoes the cause: %s", rec.Body)
				}
			})
		}
	}
}

// A refusal that a retry would not change is no outage: it stays an internal error.
func TestDependencyDownIsNotEveryError(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		errors.New("some bug"),
		&pgconn.PgError{Code: "22P02", Message: "invalid input syntax for type uuid"},
		&pgconn.PgError{Code: "23505", Message: "duplicate key"},
		serviceerror.NewInvalidArgument("bad request"),
	} {
		if dependencyDown(err) {
			t.Errorf("dependencyDown(%v) = true, want false", err)
		}
	}
}
