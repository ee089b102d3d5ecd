package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/cartflow/cartflow/activities"
	"github.com/cartflow/cartflow/internal/domain"
)

const testWorkflowID = "checkout-key-1"

var testInput = CheckoutInput{
	CheckoutID: "chk_test", IdempotencyKey: "key-1", RequestHash: "hash-1",
	Email: " Ann@Example.com ", Name: "Ann Lee",
	Items:   []Item{{SKU: "tshirt-classic", Quantity: 2}},
	Payment: Payment{Provider: "stripe", Token: "pm_card_visa"},
}

// newEnv returns a test environment whose activities all succeed unless a test overrides them.
// The standardize activity runs for real: it is pure.
func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testWorkflowID})
	env.RegisterWorkflow(Checkout)
	env.RegisterActivity(&activities.Activities{})
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

// completion matches the completion of orderID by user-1 that queues the order's receipt to
// the customer: since the outbox, the receipt travels with the completion, and no email
// activity runs (none is mocked, so one would fail the test).
func completion(orderID string) any {
	return mock.MatchedBy(func(in activities.CompleteOrderInput) bool {
		return in.Caller == activities.CallerCheckout && in.OrderID == orderID && in.UserID == "user-1" &&
			in.Receipt != nil && in.Receipt.EventKey == "receipt/order/"+orderID && in.Receipt.To == "ann@example.com" &&
			in.Receipt.Receipt != nil && in.Receipt.Receipt.OrderID == orderID
	})
}

func mockOrder(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(a.CreateOrder, mock.Anything, mock.MatchedBy(func(in activities.CreateOrderInput) bool {
		return in.Customer.Email == "ann@example.com" && in.WorkflowID == testWorkflowID && in.Rejection == nil
	})).Return(activities.OrderSummary{OrderID: "order-1", Status: "pending", Amount: 5000, Currency: "usd"}, nil).Once()
}

func mockChargeOK(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(a.Charge, mock.Anything, mock.MatchedBy(func(in activities.ChargeInput) bool {
		return in.IdempotencyKey == testWorkflowID+"/charge" && in.Amount == 5000 && in.Token == "pm_card_visa"
	})).Return(activities.ChargeResult{ProviderRef: "pi_1"}, nil).Once()
}

func mockRegistration(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(a.RegisterUser, mock.Anything, activities.Customer{Email: "ann@example.com", Name: "Ann Lee"}).Return("user-1", nil).Once()
	env.OnActivity(a.CompleteOrder, mock.Anything, completion("order-1")).Return(nil).Once()
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) CheckoutState {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var st CheckoutState
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) domain.OrderStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var st CheckoutState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st.Status
}

func TestPurchaseCompletes(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	mockChargeOK(env)
	mockRegistration(env)

	env.ExecuteWorkflow(Checkout, testInput)

	st := result(t, env)
	want := CheckoutState{CheckoutID: "chk_test", OrderID: "order-1", Status: domain.OrderCompleted, Amount: 5000, Currency: "usd"}
	if st != want {
		t.Fatalf("state = %+v, want %+v", st, want)
	}
}

func TestPurchaseStatusQueryAtEachStage(t *testing.T) {
	env := newEnv(t)
	seen := map[string]domain.OrderStatus{}
	// Writing the order takes a minute; the query then must see pending.
	env.OnActivity(a.CreateOrder, mock.Anything, mock.Anything).After(time.Minute).
		Return(activities.OrderSummary{OrderID: "order-1", Status: "pending", Amount: 5000, Currency: "usd"}, nil).Once()
	env.RegisterDelayedCallback(func() { seen["during order creation"] = queryStatus(t, env) }, 30*time.Second)
	// The charge takes a minute of workflow time; the query in the middle must see charging.
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).After(time.Minute).Return(activities.ChargeResult{ProviderRef: "pi_1"}, nil).Once()
	env.RegisterDelayedCallback(func() { seen["during charge"] = queryStatus(t, env) }, 90*time.Second)
	// Registration takes another minute; the query then must see paid.
	env.OnActivity(a.RegisterUser, mock.Anything, mock.Anything).After(time.Minute).Return("user-1", nil).Once()
	env.RegisterDelayedCallback(func() { seen["during registration"] = queryStatus(t, env) }, 150*time.Second)
	env.OnActivity(a.CompleteOrder, mock.Anything, mock.Anything).Return(nil).Once()

	env.ExecuteWorkflow(Checkout, testInput)

	if st := result(t, env); st.Status != domain.OrderCompleted {
		t.Fatalf("final status %s", st.Status)
	}
	if seen["during order creation"] != domain.OrderPending {
		t.Errorf("status during order creation = %q, want pending", seen["during order creation"])
	}
	if seen["during charge"] != domain.OrderCharging {
		t.Errorf("status during charge = %q, want charging", seen["during charge"])
	}
	if seen["during registration"] != domain.OrderPaid {
		t.Errorf("status during registration = %q, want paid", seen["during registration"])
	}
	if s := queryStatus(t, env); s != domain.OrderCompleted {
		t.Errorf("status after completion = %q", s)
	}
}

func TestPurchaseDeclineFailsWithoutRegistering(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	decline := temporal.NewNonRetryableApplicationError("Your card was declined.", activities.ErrTypeCardDeclined, nil,
		domain.Failure{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card was declined."})
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).Return(activities.ChargeResult{}, decline).Once()

	env.ExecuteWorkflow(Checkout, testInput)

	st := result(t, env)
	if st.Status != domain.OrderFailed || st.FailureCode != "card_declined" || st.DeclineCode != "insufficient_funds" ||
		st.FailureMessage != "Your card was declined." {
		t.Fatalf("state = %+v", st)
	}
	env.AssertNotCalled(t, "RegisterUser", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "Refund", mock.Anything, mock.Anything)
}

// A payment request the provider refuses as malformed (cartflow's bug) ends the checkout failed
// with the activity's generic failure, after one charge.
func TestPurchaseInvalidPaymentRequestFails(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	invalid := temporal.NewNonRetryableApplicationError("the payment could not be completed", activities.ErrTypePaymentRequestInvalid, nil,
		domain.Failure{Code: "payment_request_invalid", Message: "the payment could not be completed"})
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).Return(activities.ChargeResult{}, invalid).Once()

	env.ExecuteWorkflow(Checkout, testInput)

	st := result(t, env)
	if st.Status != domain.OrderFailed || st.FailureCode != "payment_request_invalid" || st.FailureMessage != "the payment could not be completed" {
		t.Fatalf("state = %+v", st)
	}
	env.AssertNumberOfCalls(t, "Charge", 1)
	env.AssertNotCalled(t, "RegisterUser", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "Refund", mock.Anything, mock.Anything)
}

func TestPurchaseRetriesTechnicalChargeFailure(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).Return(activities.ChargeResult{}, errors.New("stripe temporarily failed (status 503)")).Twice()
	mockChargeOK(env)
	mockRegistration(env)

	env.ExecuteWorkflow(Checkout, testInput)

	if st := result(t, env); st.Status != domain.OrderCompleted {
		t.Fatalf("state = %+v", st)
	}
	env.AssertNumberOfCalls(t, "Charge", 3)
}

func TestPurchaseRefundsWhenRegistrationFails(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	mockChargeOK(env)
	env.OnActivity(a.RegisterUser, mock.Anything, mock.Anything).Return("", errors.New("directory unavailable"))
	env.OnActivity(a.Refund, mock.Anything, mock.MatchedBy(func(in activities.RefundInput) bool {
		return in.PaymentRef == "pi_1" && in.Amount == 5000 && in.IdempotencyKey == testWorkflowID+"/refund" &&
			in.Reason.Code == "registration_failed"
	})).Return(activities.RefundResult{ProviderRef: "re_1", Amount: 5000}, nil).Once()

	env.ExecuteWorkflow(Checkout, testInput)

	st := result(t, env)
	if st.Status != domain.OrderRefunded || st.FailureCode != "registration_failed" {
		t.Fatalf("state = %+v", st)
	}
	env.AssertNotCalled(t, "CompleteOrder", mock.Anything, mock.Anything)
}

func TestPurchaseCompensatesUnknownChargeOutcome(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).Return(activities.ChargeResult{}, errors.New("stripe unreachable, outcome unknown"))
	env.OnActivity(a.Refund, mock.Anything, mock.MatchedBy(func(in activities.RefundInput) bool {
		return in.PaymentRef == "" && in.ChargeKey == testWorkflowID+"/charge"
	})).Return(activities.RefundResult{NothingCharged: true}, nil).Once()
	env.OnActivity(a.FailOrder, mock.Anything, mock.MatchedBy(func(in activities.OrderFailure) bool {
		return in.OrderID == "order-1" && in.Failure.Code == "payment_unavailable"
	})).Return(nil).Once()

	env.ExecuteWorkflow(Checkout, testInput)

	st := result(t, env)
	if st.Status != domain.OrderFailed || st.FailureCode != "payment_unavailable" {
		t.Fatalf("state = %+v", st)
	}
	env.AssertNotCalled(t, "RegisterUser", mock.Anything, mock.Anything)
}

func TestPurchaseRecordsInvalidEmailAsFailedOrder(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.CreateOrder, mock.Anything, mock.MatchedBy(func(in activities.CreateOrderInput) bool {
		return in.Rejection != nil && in.Rejection.Code == "invalid_email"
	})).Return(activities.OrderSummary{OrderID: "order-1", Status: "failed", Failure: &domain.Failure{Code: "invalid_email", Message: "bad"}}, nil).Once()
	in := testInput
	in.Email = "not-an-email"

	env.ExecuteWorkflow(Checkout, in)

	if st := result(t, env); st.Status != domain.OrderFailed || st.FailureCode != "invalid_email" {
		t.Fatalf("state = %+v", st)
	}
	env.AssertNotCalled(t, "Charge", mock.Anything, mock.Anything)
}

func TestAwaitPaymentUpdate(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).After(time.Minute).Return(activities.ChargeResult{ProviderRef: "pi_1"}, nil).Once()
	mockRegistration(env)

	var same, different updateResult
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateAwaitOutcome, "same", &same, AwaitOutcomeRequest{RequestHash: "hash-1"})
		env.UpdateWorkflow(UpdateAwaitOutcome, "different", &different, AwaitOutcomeRequest{RequestHash: "other"})
	}, time.Second)

	env.ExecuteWorkflow(Checkout, testInput)

	result(t, env)
	if same.err != nil || !same.state.Status.Final() || same.state.OrderID != "order-1" {
		t.Fatalf("matching update: %+v, %v", same.state, same.err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(different.rejected, &appErr) || appErr.Type() != ErrTypeIdempotencyKeyReused {
		t.Fatalf("different request hash: rejected = %v", different.rejected)
	}
}

// updateResult collects an update's outcome in the test environment.
type updateResult struct {
	rejected error
	state    CheckoutState
	err      error
}

func (u *updateResult) Accept()          {}
func (u *updateResult) Reject(err error) { u.rejected = err }
func (u *updateResult) Complete(v any, err error) {
	u.err = err
	if s, ok := v.(CheckoutState); ok {
		u.state = s
	}
}

// planInput buys a plan; the order activity decides from the catalog that it is one.
var planInput = func() CheckoutInput {
	in := testInput
	in.Items = []Item{{SKU: "plan-monthly", Quantity: 1}}
	return in
}()

func TestPurchaseOfATrialPlanSavesTheCardAndChargesNothing(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.CreateOrder, mock.Anything, mock.Anything).Return(activities.OrderSummary{
		OrderID: "order-1", Status: "pending", Amount: 0, Currency: "usd",
		Plan: &activities.Plan{SKU: "plan-monthly", Name: "Plus", Amount: 900, Currency: "usd", BillingInterval: "month", TrialDays: 14},
	}, nil).Once()
	env.OnActivity(a.SavePaymentMethod, mock.Anything, activities.SavePaymentMethodInput{
		OrderID: "order-1", Provider: "stripe", Token: "pm_card_visa", Email: "ann@example.com", Name: "Ann Lee",
		IdempotencyKey: testWorkflowID + "/save-payment-method",
	}).Return(activities.SavedPaymentMethod{CustomerRef: "cus_1", PaymentMethodRef: "pm_saved"}, nil).Once()
	env.OnActivity(a.RegisterUser, mock.Anything, activities.Customer{Email: "ann@example.com", Name: "Ann Lee"}).Return("user-1", nil).Once()
	env.OnActivity(a.CreateSubscription, mock.Anything, mock.MatchedBy(func(in activities.CreateSubscriptionInput) bool {
		return in.OrderID == "order-1" && in.UserID == "user-1" && in.CustomerRef == "cus_1" && in.PaymentMethodRef == "pm_saved" && !in.Start.IsZero()
	})).Return(activities.Subscription{ID: "sub-1", Status: domain.SubscriptionTrialing}, nil).Once()
	env.OnActivity(a.CompleteOrder, mock.Anything, completion("order-1")).Return(nil).Once()

	env.ExecuteWorkflow(Checkout, planInput)

	st := result(t, env)
	if st.Status != domain.OrderCompleted || st.SubscriptionID != "sub-1" || st.Amount != 0 {
		t.Fatalf("state %+v", st)
	}
	// No Charge mock was set: a charge would have run the real activity and failed the test.
}

func TestPurchaseOfAPaidPlanChargesTheSavedCard(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.CreateOrder, mock.Anything, mock.Anything).Return(activities.OrderSummary{
		OrderID: "order-1", Status: "pending", Amount: 9000, Currency: "usd",
		Plan: &activities.Plan{SKU: "plan-yearly", Name: "Plus yearly", Amount: 9000, Currency: "usd", BillingInterval: "year"},
	}, nil).Once()
	env.OnActivity(a.SavePaymentMethod, mock.Anything, mock.Anything).
		Return(activities.SavedPaymentMethod{CustomerRef: "cus_1", PaymentMethodRef: "pm_saved"}, nil).Once()
	env.OnActivity(a.Charge, mock.Anything, mock.MatchedBy(func(in activities.ChargeInput) bool {
		return in.Token == "pm_saved" && in.CustomerRef == "cus_1" && !in.OffSession && in.Amount == 9000 &&
			in.IdempotencyKey == testWorkflowID+"/charge"
	})).Return(activities.ChargeResult{ProviderRef: "pi_1"}, nil).Once()
	env.OnActivity(a.RegisterUser, mock.Anything, mock.Anything).Return("user-1", nil).Once()
	env.OnActivity(a.CreateSubscription, mock.Anything, mock.Anything).Return(activities.Subscription{ID: "sub-1", Status: domain.SubscriptionActive}, nil).Once()
	env.OnActivity(a.CompleteOrder, mock.Anything, completion("order-1")).Return(nil).Once()

	env.ExecuteWorkflow(Checkout, planInput)

	if st := result(t, env); st.Status != domain.OrderCompleted || st.SubscriptionID != "sub-1" || st.Amount != 9000 {
		t.Fatalf("state %+v", st)
	}
}

func TestPurchaseOfAPlanFailsWhenTheCardCannotBeSaved(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.CreateOrder, mock.Anything, mock.Anything).Return(activities.OrderSummary{
		OrderID: "order-1", Status: "pending", Currency: "usd", Plan: &activities.Plan{SKU: "plan-monthly", TrialDays: 14},
	}, nil).Once()
	env.OnActivity(a.SavePaymentMethod, mock.Anything, mock.Anything).Return(activities.SavedPaymentMethod{},
		temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeCardDeclined, nil,
			domain.Failure{Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."})).Once()

	env.ExecuteWorkflow(Checkout, planInput)

	if st := result(t, env); st.Status != domain.OrderFailed || st.FailureCode != "card_declined" || st.SubscriptionID != "" {
		t.Fatalf("state %+v", st)
	}
}

// mock3DSCharge answers the charge with a request to authenticate, after delay.
func mock3DSCharge(env *testsuite.TestWorkflowEnvironment, delay time.Duration) {
	env.OnActivity(a.Charge, mock.Anything, mock.Anything).After(delay).Return(activities.ChargeResult{
		ProviderRef: "pi_3ds", Action: &activities.PaymentAction{ClientSecret: "pi_3ds_secret_x", Type: "use_stripe_sdk"},
	}, nil).Once()
}

var authInput = activities.AuthenticationInput{OrderID: "order-1", Provider: "stripe", PaymentRef: "pi_3ds", ChargeKey: testWorkflowID + "/charge"}

func TestAuthenticationCompletedByWebhook(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	mock3DSCharge(env, 0)
	var during CheckoutState
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(QueryStatus)
		_ = v.Get(&during)
		env.SignalWorkflow(SignalPaymentOutcome, PaymentOutcomeSignal{EventType: "payment.succeeded", PaymentRef: "pi_3ds"})
	}, 3*time.Minute)
	env.OnActivity(a.VerifyAuthentication, mock.Anything, authInput).Return(activities.AuthenticationResult{Status: activities.AuthenticationSucceeded}, nil).Once()
	mockRegistration(env)

	env.ExecuteWorkflow(Checkout, testInput)

	if during.Status != domain.OrderRequiresAction || during.Action == nil || during.Action.ClientSecret != "pi_3ds_secret_x" || during.Action.Type != "use_stripe_sdk" {
		t.Fatalf("state while waiting %+v", during)
	}
	if st := result(t, env); st.Status != domain.OrderCompleted || st.Action != nil {
		t.Fatalf("state %+v", st)
	}
}

func TestAuthenticationCompletedByTheStorefront(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	mock3DSCharge(env, 0)
	// The first report comes before the customer really finished: the provider still waits.
	env.OnActivity(a.VerifyAuthentication, mock.Anything, authInput).Return(activities.AuthenticationResult{Status: activities.AuthenticationPending}, nil).Once()
	env.OnActivity(a.VerifyAuthentication, mock.Anything, authInput).Return(activities.AuthenticationResult{Status: activities.AuthenticationSucceeded}, nil).Once()
	var answers []domain.OrderStatus
	report := func() {
		env.UpdateWorkflow(UpdateAuthenticationCompleted, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("update rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if err != nil {
					t.Errorf("update: %v", err)
					return
				}
				answers = append(answers, v.(CheckoutState).Status)
			},
		})
	}
	env.RegisterDelayedCallback(report, 2*time.Minute)
	env.RegisterDelayedCallback(report, 4*time.Minute)
	mockRegistration(env)

	env.ExecuteWorkflow(Checkout, testInput)

	if st := result(t, env); st.Status != domain.OrderCompleted {
		t.Fatalf("state %+v", st)
	}
	if len(answers) != 2 || answers[0] != domain.OrderRequiresAction || answers[1] == domain.OrderRequiresAction {
		t.Fatalf("the storefront was answered %v", answers)
	}
}

func TestAuthenticationTimeoutCancelsAndExpires(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	mock3DSCharge(env, 0)
	var expiredAt time.Duration
	start := env.Now()
	env.OnActivity(a.ExpireAuthentication, mock.Anything, authInput).Return(func(context.Context, activities.AuthenticationInput) (activities.AuthenticationResult, error) {
		expiredAt = env.Now().Sub(start)
		return activities.AuthenticationResult{Status: activities.AuthenticationExpired}, nil
	}).Once()

	env.ExecuteWorkflow(Checkout, CheckoutInput{CheckoutID: testInput.CheckoutID, IdempotencyKey: testInput.IdempotencyKey,
		RequestHash: testInput.RequestHash, Email: testInput.Email, Name: testInput.Name, Items: testInput.Items,
		Payment: testInput.Payment, AuthenticationTimeout: 10 * time.Minute})

	st := result(t, env)
	if st.Status != domain.OrderExpired || st.FailureCode != "authentication_timeout" || st.Action != nil {
		t.Fatalf("state %+v", st)
	}
	if expiredAt < 10*time.Minute || expiredAt > 11*time.Minute {
		t.Fatalf("the payment was canceled after %v, want the 10-minute timeout", expiredAt)
	}
	// No registration, no receipt: nothing was charged.
}

func TestWebhookBeforeTheWaitIsNotLost(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	// The charge answers after a minute; the webhook arrives 30 seconds into it.
	mock3DSCharge(env, time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPaymentOutcome, PaymentOutcomeSignal{EventType: "payment.succeeded", PaymentRef: "pi_3ds"})
	}, 30*time.Second)
	env.OnActivity(a.VerifyAuthentication, mock.Anything, authInput).Return(activities.AuthenticationResult{Status: activities.AuthenticationSucceeded}, nil).Once()
	mockRegistration(env)

	start := env.Now()
	env.ExecuteWorkflow(Checkout, testInput)

	if st := result(t, env); st.Status != domain.OrderCompleted {
		t.Fatalf("state %+v", st)
	}
	if took := env.Now().Sub(start); took > 5*time.Minute {
		t.Fatalf("the checkout took %v: the early webhook was lost and the wait ran on", took)
	}
}

func TestAuthenticationFailureFailsTheCheckout(t *testing.T) {
	env := newEnv(t)
	mockOrder(env)
	mock3DSCharge(env, 0)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPaymentOutcome, PaymentOutcomeSignal{EventType: "payment.failed", PaymentRef: "pi_3ds"})
	}, time.Minute)
	env.OnActivity(a.VerifyAuthentication, mock.Anything, authInput).Return(activities.AuthenticationResult{},
		temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeCardDeclined, nil,
			domain.Failure{Code: "payment_intent_authentication_failure", Message: "authentication failed"})).Once()

	env.ExecuteWorkflow(Checkout, testInput)

	if st := result(t, env); st.Status != domain.OrderFailed || st.FailureCode != "payment_intent_authentication_failure" {
		t.Fatalf("state %+v", st)
	}
}
