package activities

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/cartflow/cartflow/internal/mailer"
	"github.com/cartflow/cartflow/internal/store"
)

// SignInLinkTTL is how long a sign-in link works. Short, because the link is a bearer
// credential sitting in a mailbox.
const SignInLinkTTL = 15 * time.Minute

// Links makes the storefront URLs that emails carry. The paths are the storefront's pages
// (web/): the account's order and subscription pages ask for a sign-in first when there is no
// session, then land where the link pointed.
type Links struct {
	// StorefrontURL is the storefront's origin, e.g. https://shop.example.com; empty makes no links.
	StorefrontURL string
}

func (l Links) page(path string, query url.Values) string {
	if l.StorefrontURL == "" {
		return ""
	}
	u := strings.TrimRight(l.StorefrontURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// Order is the order's page in the customer's account.
func (l Links) Order(orderID string) string {
	if orderID == "" {
		return ""
	}
	return l.page(AccountOrderPath(orderID), nil)
}

// Subscription is the subscription's page in the customer's account.
func (l Links) Subscription(subscriptionID string) string {
	if subscriptionID == "" {
		return ""
	}
	return l.page(AccountSubscriptionPath(subscriptionID), nil)
}

// UpdateCard is the sign-in page, set to land on replacing the subscription's card. It carries
// no token: a dunning email is read hours or days later, after a 15-minute link has died, and a
// longer-lived token would be a credential waiting in a mailbox. The customer asks for a fresh
// link there, which lands on the card form.
func (l Links) UpdateCard(subscriptionID string) string {
	if subscriptionID == "" {
		return ""
	}
	return l.page("/sign-in", url.Values{"next": {AccountSubscriptionPath(subscriptionID) + "/payment-method"}})
}

// SignIn is a magic link: the storefront's sign-in page with the token, which it exchanges for
// a session (POST /api/v1/auth/sessions).
func (l Links) SignIn(token string) string { return l.page("/sign-in", url.Values{"token": {token}}) }

// AccountOrderPath is the storefront path of an order in the customer's account.
func AccountOrderPath(orderID string) string { return "/account/orders/" + orderID }

// AccountSubscriptionPath is the storefront path of a subscription in the customer's account.
func AccountSubscriptionPath(subscriptionID string) string {
	return "/account/subscriptions/" + subscriptionID
}

// SignInLinkInput asks for a sign-in link for an address. It holds no token: the activity draws
// the token, so that it is never in a workflow history.
type SignInLinkInput struct {
	// RequestID names the request (the workflow's ID), so that a retried activity sends at most one email.
	RequestID string `json:"request_id"`
	// Email is the standardized address asked for.
	Email string `json:"email"`
	// Next is the storefront path to land on after signing in; empty lands on the account.
	Next string `json:"next,omitempty"`
}

// SendSignInLink emails a single-use sign-in link to a known customer, and does nothing for an
// address the User Directory does not hold: the BFF answers the same either way, so that the
// endpoint tells nobody which addresses are customers. The token is stored hashed before the
// email goes out; a retry after a claimed email sends nothing more (SendEmail's rule), and the
// unsent token simply expires.
func (a *Activities) SendSignInLink(ctx context.Context, in SignInLinkInput) (EmailResult, error) {
	u, err := a.Store.UserByEmail(ctx, in.Email)
	if errors.Is(err, store.ErrNotFound) {
		return EmailResult{}, nil
	}
	if err != nil {
		return EmailResult{}, err
	}
	token, err := a.Store.IssueSignInToken(ctx, u.ID, in.Next, SignInLinkTTL)
	if err != nil {
		return EmailResult{}, err
	}
	return a.sendOnce(ctx, "sign-in/"+in.RequestID, u.Email, mailer.SignInLink{Name: u.Name, URL: a.Links.SignIn(token), ExpiresIn: SignInLinkTTL})
}
