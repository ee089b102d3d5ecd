//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// signInLinkToken is how a magic link carries its token in the sign-in email.
var signInLinkToken = regexp.MustCompile(`/sign-in\?token=([A-Za-z0-9_-]{43})`)

// signInLinkSubject is the subject of the sign-in email.
const signInLinkSubject = "sign-in link"

// requestSignInLink asks for a link for email and returns the BFF's answer.
func requestSignInLink(t testing.TB, email string) (int, string) {
	t.Helper()
	return doJSON(t, http.MethodPost, "/api/v1/auth/sign-in-links", "", `{"email":"`+email+`"}`)
}

// readSignInToken waits for the n-th sign-in email to email and returns the token in its link,
// as a customer clicking it would.
func readSignInToken(t testing.TB, email string, n int) string {
	t.Helper()
	msgs := waitEmails(t, email, signInLinkSubject, n)
	m := signInLinkToken.FindStringSubmatch(emailText(t, msgs[0].ID))
	if m == nil {
		t.Fatalf("no sign-in link in the email to %s", email)
	}
	return m[1]
}

// exchange spends a sign-in token and returns the status and the session cookie it set.
func exchange(t testing.TB, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, dev.APIURL+"/api/v1/auth/sessions", strings.NewReader(`{"token":"`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "cartflow_session" {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("session cookie %+v is not HttpOnly and SameSite=Lax", c)
			}
			return resp.StatusCode, c.Value
		}
	}
	return resp.StatusCode, ""
}

// signIn signs email in through the real path, the link read from Mailpit, and returns the
// session cookie's value.
func signIn(t testing.TB, email string) string {
	t.Helper()
	before := 0
	for _, m := range emailsTo(t, email) {
		if strings.Contains(m.Subject, signInLinkSubject) {
			before++
		}
	}
	if code, raw := requestSignInLink(t, email); code != http.StatusAccepted {
		t.Fatalf("sign-in link: %d %s", code, raw)
	}
	code, session := exchange(t, readSignInToken(t, email, before+1))
	if code != http.StatusCreated || session == "" {
		t.Fatalf("exchange the link: %d", code)
	}
	return session
}

// asCustomer is the headers doJSON sends for a signed-in customer's browser on the storefront.
func asCustomer(session string) []string {
	return []string{"Cookie", "cartflow_session=" + session, "Origin", dev.StorefrontURL}
}

// subscriptionOf is the subscription a checkout's order bought.
func subscriptionOf(t testing.TB, orderID string) string {
	t.Helper()
	var id string
	if err := db.QueryRow(context.Background(), `SELECT id::text FROM subscriptions WHERE order_id = $1`, orderID).Scan(&id); err != nil {
		t.Fatalf("subscription of order %s: %v", orderID, err)
	}
	return id
}

// TestCustomerSignsInByMailAndManagesTheirSubscription is the customer's whole identity journey
// on the real stack: a trial bought as a guest, a link asked for (and the same answer for an
// address nobody has), the link read from Mailpit and spent once, the account's orders and
// subscription, a cancel and a resume, another customer refused, and signing out.
func TestCustomerSignsInByMailAndManagesTheirSubscription(t *testing.T) {
	tag := strings.ToLower(newKey(t)[4:14])
	ann, bea, nobody := "ann-"+tag+"@example.com", "bea-"+tag+"@example.com", "nobody-"+tag+"@example.com"
	subID, _ := subscribe(t, ann, "pm_card_visa")
	if s := queryString(t, `SELECT status FROM users WHERE email = $1`, ann); s != "pending" {
		t.Fatalf("a guest who never followed a link is %s, want pending", s)
	}

	// The same answer for a customer and for an address nobody has; only the customer gets mail.
	codeKnown, known := requestSignInLink(t, ann)
	codeUnknown, unknown := requestSignInLink(t, nobody)
	if codeKnown != http.StatusAccepted || codeUnknown != http.StatusAccepted || known != unknown {
		t.Fatalf("known %d %s, unknown %d %s: want the same 202", codeKnown, known, codeUnknown, unknown)
	}
	token := readSignInToken(t, ann, 1)
	waitFor(t, "every sign-in link workflow to finish", 30*time.Second, func() bool {
		resp, err := temporal.ListWorkflow(context.Background(), listRequest(`WorkflowType = 'SignInLink' AND ExecutionStatus = 'Running'`))
		return err == nil && len(resp.GetExecutions()) == 0
	})
	if n := len(emailsTo(t, nobody)); n != 0 {
		t.Fatalf("%d emails to an address nobody has", n)
	}
	if n := queryInt(t, `SELECT count(*) FROM sign_in_tokens WHERE position(convert_to($1, 'UTF8') in token_hash) > 0`, token); n != 0 {
		t.Fatal("the token is in the database in clear")
	}

	code, session := exchange(t, token)
	if code != http.StatusCreated || session == "" {
		t.Fatalf("exchange: %d", code)
	}
	if code, _ := exchange(t, token); code != http.StatusUnauthorized {
		t.Fatalf("the link worked twice: %d", code)
	}
	if s := queryString(t, `SELECT status FROM users WHERE email = $1`, ann); s != "confirmed" {
		t.Fatalf("after following the link the user is %s, want confirmed", s)
	}

	// The account: the trial's order and the subscription.
	code, raw := doJSON(t, http.MethodGet, "/api/v1/me/orders", "", "", asCustomer(session)...)
	var orders struct {
		Orders []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"orders"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(raw), &orders) != nil || len(orders.Orders) != 1 || orders.Orders[0].Status != "completed" {
		t.Fatalf("my orders: %d %s", code, raw)
	}
	if code, raw := doJSON(t, http.MethodGet, "/api/v1/me/orders/"+orders.Orders[0].ID, "", "", asCustomer(session)...); code != http.StatusOK {
		t.Fatalf("my order: %d %s", code, raw)
	}
	if code, raw := doJSON(t, http.MethodGet, "/api/v1/me/subscriptions", "", "", asCustomer(session)...); code != http.StatusOK || !strings.Contains(raw, subID) {
		t.Fatalf("my subscriptions: %d %s", code, raw)
	}

	// Bea, signed in with an account of her own, cannot see or touch Ann's.
	beaSub, _ := subscribe(t, bea, "pm_card_visa")
	beaSession := signIn(t, bea)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/me/subscriptions/" + subID, ""},
		{http.MethodPost, "/api/v1/me/subscriptions/" + subID + "/cancel", `{"at_period_end": false}`},
		{http.MethodGet, "/api/v1/me/orders/" + orders.Orders[0].ID, ""},
	} {
		key := ""
		if r.method != http.MethodGet {
			key = newKey(t)
		}
		if code, raw := doJSON(t, r.method, r.path, key, r.body, asCustomer(beaSession)...); code != http.StatusNotFound {
			t.Errorf("Bea: %s %s: %d %s, want 404", r.method, r.path, code, raw)
		}
	}
	if s, _, _ := subscriptionStatus(t, subID); s != "trialing" {
		t.Fatalf("Ann's subscription is %s after Bea's attempt", s)
	}
	if code, raw := doJSON(t, http.MethodGet, "/api/v1/me/subscriptions/"+beaSub, "", "", asCustomer(session)...); code != http.StatusNotFound {
		t.Errorf("Ann reads Bea's subscription: %d %s", code, raw)
	}

	// Ann cancels at the period's end, then resumes.
	if code, raw := doJSON(t, http.MethodPost, "/api/v1/me/subscriptions/"+subID+"/cancel", newKey(t), `{"at_period_end": true}`, asCustomer(session)...); code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, raw)
	}
	if queryString(t, `SELECT cancel_at_period_end::text FROM subscriptions WHERE id = $1`, subID) != "true" {
		t.Fatal("the cancel did not land")
	}
	if code, raw := doJSON(t, http.MethodPost, "/api/v1/me/subscriptions/"+subID+"/resume", newKey(t), "", asCustomer(session)...); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, raw)
	}
	if queryString(t, `SELECT cancel_at_period_end::text FROM subscriptions WHERE id = $1`, subID) != "false" {
		t.Fatal("the resume did not land")
	}

	// Signing out ends the session for good.
	if code, raw := doJSON(t, http.MethodDelete, "/api/v1/auth/sessions/current", "", "", asCustomer(session)...); code != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", code, raw)
	}
	if code, _ := doJSON(t, http.MethodGet, "/api/v1/me", "", "", asCustomer(session)...); code != http.StatusUnauthorized {
		t.Fatalf("after signing out: %d, want 401", code)
	}
}

// The sign-in link's token never enters a workflow history: the activity draws it.
func TestSignInTokenIsNotInTheHistory(t *testing.T) {
	email := "hist-" + strings.ToLower(newKey(t)[4:14]) + "@example.com"
	subscribe(t, email, "pm_card_visa")
	if code, raw := requestSignInLink(t, email); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, raw)
	}
	token := readSignInToken(t, email, 1)
	resp, err := temporal.ListWorkflow(context.Background(), listRequest(`WorkflowType = 'SignInLink'`))
	if err != nil || len(resp.GetExecutions()) == 0 {
		t.Fatalf("list sign-in workflows: %v", err)
	}
	for _, e := range resp.GetExecutions() {
		iter := temporal.GetWorkflowHistory(context.Background(), e.GetExecution().GetWorkflowId(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(ev.String(), token) {
				t.Fatalf("the token is in the history of %s", e.GetExecution().GetWorkflowId())
			}
		}
	}
}

// queryString runs a query for one text value.
func queryString(t testing.TB, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// listRequest lists the workflows that match a visibility query.
func listRequest(query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: query}
}
