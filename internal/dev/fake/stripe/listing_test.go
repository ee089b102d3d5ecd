//go:build integration

package stripe

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// chargeBatch makes n succeeded PaymentIntents and returns their ids, oldest first, and the
// created time (Unix seconds) of the last one.
func (e *env) chargeBatch(t *testing.T, n int) ([]string, int64) {
	t.Helper()
	var ids []string
	var last int64
	for range n {
		pi, err := e.charge("pm_card_visa", "", 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids, last = append(ids, pi.ID), pi.Created
	}
	return ids, last
}

// list pages through GET /v1/payment_intents with stripe-go's iterator.
func (e *env) list(t *testing.T, params *stripe.PaymentIntentListParams) []*stripe.PaymentIntent {
	t.Helper()
	var out []*stripe.PaymentIntent
	it := e.sc.PaymentIntents.List(params)
	for it.Next() {
		out = append(out, it.PaymentIntent())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(pis []*stripe.PaymentIntent) []string {
	out := make([]string, len(pis))
	for i, pi := range pis {
		out[i] = pi.ID
	}
	return out
}

// The list API gives every PaymentIntent created in a window, newest first, in pages that
// stripe-go's iterator follows with starting_after while has_more says so.
func TestListPaymentIntentsByCreationTime(t *testing.T) {
	e := newEnv(t)
	// created has a resolution of one second: the batches are made in different seconds.
	_, beforeLast := e.chargeBatch(t, 3)
	time.Sleep(1100 * time.Millisecond)
	window, windowLast := e.chargeBatch(t, 23)
	time.Sleep(1100 * time.Millisecond)
	after, _ := e.chargeBatch(t, 2)
	e.proxy.ClearRequests()

	params := &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{
		GreaterThanOrEqual: beforeLast + 1, LesserThanOrEqual: windowLast}}
	params.Limit = stripe.Int64(10)
	got := e.list(t, params)
	want := slices.Clone(window)
	slices.Reverse(want) // newest first
	if !slices.Equal(ids(got), want) {
		t.Fatalf("listed %v, want the window's %v newest first", ids(got), want)
	}
	var pages []Request
	for _, r := range e.proxy.Requests() {
		if r.Method == http.MethodGet && r.Path == "/v1/payment_intents" {
			pages = append(pages, r)
		}
	}
	if len(pages) != 3 || pages[0].Params["starting_after"] != nil || pages[1].Params["starting_after"][0] != want[9] ||
		pages[2].Params["starting_after"][0] != want[19] {
		t.Fatalf("pages %+v, want three, each after the last one seen", pages)
	}

	// gt and lt exclude their bound; without a bound everything is listed.
	params = &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThan: windowLast}}
	if got := ids(e.list(t, params)); !slices.Equal(got, []string{after[1], after[0]}) {
		t.Fatalf("created[gt]: %v, want %v", got, after)
	}
	params = &stripe.PaymentIntentListParams{CreatedRange: &stripe.RangeQueryParams{LesserThan: beforeLast + 1}}
	if got := e.list(t, params); len(got) != 3 {
		t.Fatalf("created[lt]: %v, want the 3 before the window", ids(got))
	}
	if got := e.list(t, &stripe.PaymentIntentListParams{}); len(got) != 28 {
		t.Fatalf("unfiltered list: %d, want all 28", len(got))
	}

	// One page by hand: the default limit is 10, and has_more says more are left.
	page := e.sc.PaymentIntents.List(&stripe.PaymentIntentListParams{ListParams: stripe.ListParams{Single: true}})
	var n int
	for page.Next() {
		n++
	}
	if n != 10 || !page.PaymentIntentList().HasMore {
		t.Fatalf("first page: %d, has_more %v; want 10 and more", n, page.PaymentIntentList().HasMore)
	}
	// ending_before pages back towards the newest: the page is the 3 made just after the cursor,
	// served newest first, which stripe-go's iterator turns round to walk away from the cursor.
	params = &stripe.PaymentIntentListParams{ListParams: stripe.ListParams{Single: true, EndingBefore: stripe.String(window[0])}}
	params.Limit = stripe.Int64(3)
	back := e.sc.PaymentIntents.List(params)
	var before []string
	for back.Next() {
		before = append(before, back.PaymentIntent().ID)
	}
	if !slices.Equal(before, []string{window[1], window[2], window[3]}) || !back.PaymentIntentList().HasMore {
		t.Fatalf("ending_before %s: %v has_more %v, want the 3 made just after it", window[0], before, back.PaymentIntentList().HasMore)
	}
}

func TestListPaymentIntentsRefusesBadParams(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=101", "limit"},
		{"starting_after=pi_unknown", "starting_after"},
		{"created%5Bgte%5D=yesterday", "created[gte]"},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/payment_intents?"+tc.query, nil)
		req.SetBasicAuth("sk_test_123", "")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", tc.query, res.StatusCode)
		}
	}
}

// With data.latest_charge expanded, each listed PaymentIntent carries its Charge, and the Charge
// what was refunded of it.
func TestListPaymentIntentsExpandsTheLatestCharge(t *testing.T) {
	e := newEnv(t)
	paid, err := e.charge("pm_card_visa", "", 3000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sc.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(paid.ID), Amount: stripe.Int64(1200)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.charge("pm_card_chargeDeclined", "", 3000, nil); err == nil {
		t.Fatal("want a decline")
	}
	unconfirmed := e.createUnconfirmed(t, "pm_card_visa", "", "")

	params := &stripe.PaymentIntentListParams{}
	params.AddExpand("data.latest_charge")
	got := e.list(t, params)
	if len(got) != 3 || got[0].ID != unconfirmed.ID || got[2].ID != paid.ID {
		t.Fatalf("listed %v", ids(got))
	}
	ch := got[2].LatestCharge
	if ch == nil || ch.ID != paid.LatestCharge.ID || ch.AmountRefunded != 1200 || ch.AmountCaptured != 3000 || ch.Refunded ||
		ch.Status != stripe.ChargeStatusSucceeded || ch.PaymentIntent == nil || ch.PaymentIntent.ID != paid.ID {
		t.Fatalf("expanded charge of the refunded payment: %+v", ch)
	}
	if declined := got[1].LatestCharge; declined == nil || declined.Status != stripe.ChargeStatusFailed || declined.AmountCaptured != 0 ||
		declined.FailureCode != "card_declined" {
		t.Fatalf("expanded charge of the declined payment: %+v", declined)
	}
	if got[0].LatestCharge != nil {
		t.Fatalf("an unconfirmed PaymentIntent has no charge: %+v", got[0].LatestCharge)
	}
	// Without expand, latest_charge stays an id.
	if plain := e.list(t, &stripe.PaymentIntentListParams{}); plain[2].LatestCharge == nil || plain[2].LatestCharge.Status != "" {
		t.Fatalf("unexpanded latest_charge: %+v", plain[2].LatestCharge)
	}
}

func (e *env) searchByOrder(t *testing.T, order string) []string {
	t.Helper()
	it := e.sc.PaymentIntents.Search(&stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{
		Query: "metadata['order_id']:'" + order + "'"}})
	var out []string
	for it.Next() {
		out = append(out, it.PaymentIntent().ID)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// postSearchLag sets the lag through the admin API and returns the status.
func (e *env) postSearchLag(t *testing.T, body string) int {
	t.Helper()
	res, err := http.Post(e.url+"/__cartflow/search_lag", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// While search lags, a PaymentIntent that was just created or changed is missing from search
// results, and retrieving and listing it still work at once, as Stripe documents.
func TestSearchLagsBehindWrites(t *testing.T) {
	e := newEnv(t)
	if code := e.postSearchLag(t, `{"lag_ms": 60000}`); code != http.StatusOK {
		t.Fatalf("POST /__cartflow/search_lag: %d", code)
	}
	pi, err := e.charge("pm_card_visa", "", 1000, map[string]string{"order_id": "o-lag"})
	if err != nil {
		t.Fatal(err)
	}
	if found := e.searchByOrder(t, "o-lag"); len(found) != 0 {
		t.Fatalf("search found %v within the lag", found)
	}
	if got, err := e.sc.PaymentIntents.Get(pi.ID, nil); err != nil || got.Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("GET within the lag: %+v %v", got, err)
	}
	if listed := e.list(t, &stripe.PaymentIntentListParams{}); len(listed) != 1 || listed[0].ID != pi.ID {
		t.Fatalf("list within the lag: %v", ids(listed))
	}
	if code := e.postSearchLag(t, `{"lag_ms": 0}`); code != http.StatusOK {
		t.Fatalf("turning the lag off: %d", code)
	}
	if found := e.searchByOrder(t, "o-lag"); !slices.Equal(found, []string{pi.ID}) {
		t.Fatalf("search without lag: %v, want %s", found, pi.ID)
	}

	// A change hides the PaymentIntent again until the lag has passed.
	waiting := e.createUnconfirmed(t, "pm_card_visa", "", "")
	e.proxy.SetSearchLag(300 * time.Millisecond)
	time.Sleep(350 * time.Millisecond)
	if found := e.searchByOrder(t, "o-confirm"); !slices.Equal(found, []string{waiting.ID}) {
		t.Fatalf("search after the lag: %v, want %s", found, waiting.ID)
	}
	if _, err := e.confirm(waiting.ID, nil); err != nil {
		t.Fatal(err)
	}
	if found := e.searchByOrder(t, "o-confirm"); len(found) != 0 {
		t.Fatalf("search right after the confirm: %v, want nothing", found)
	}
	time.Sleep(350 * time.Millisecond)
	if found := e.searchByOrder(t, "o-confirm"); !slices.Equal(found, []string{waiting.ID}) {
		t.Fatalf("search once the change is old enough: %v", found)
	}

	for _, body := range []string{`{"lag_ms": -1}`, `{}`, `{"lag": 5}`} {
		if code := e.postSearchLag(t, body); code != http.StatusBadRequest {
			t.Errorf("search lag %s: %d, want 400", body, code)
		}
	}
	e.proxy.SetSearchLag(time.Hour)
	e.proxy.Reset()
	if found := e.searchByOrder(t, "o-lag"); len(found) != 1 {
		t.Fatalf("Reset left the search lag on: %v", found)
	}
}
