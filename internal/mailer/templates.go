package mailer

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// Email kinds, as recorded in the emails table.
const (
	KindReceipt       = "receipt"
	KindTrialEnding   = "trial_ending"
	KindPaymentFailed = "payment_failed"
	KindCancellation  = "cancellation"
	KindDailySummary  = "daily_summary"
	// KindRenewalRefunded tells a customer that a renewal charge was returned.
	KindRenewalRefunded = "renewal_refunded"
	// KindSignInLink carries a single-use magic link that signs the customer in.
	KindSignInLink = "sign_in_link"
)

// Data is the typed content of one kind of email.
type Data interface {
	// Kind names the template that renders the data.
	Kind() string
}

// Receipt confirms a charge: a purchase, or a subscription's first charge or renewal.
type Receipt struct {
	Name        string `json:"name"`
	OrderID     string `json:"order_id"`
	Description string `json:"description"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	// PeriodEnd is set for subscriptions: the paid period runs until then.
	PeriodEnd *time.Time `json:"period_end,omitempty"`
	// Renewal is true when the charge renewed an existing subscription.
	Renewal bool `json:"renewal"`
	// Link opens the order in the customer's account; empty shows none.
	Link string `json:"link,omitempty"`
}

// TrialEnding reminds a customer that their trial ends and the first charge follows.
type TrialEnding struct {
	Name     string    `json:"name"`
	Plan     string    `json:"plan"`
	TrialEnd time.Time `json:"trial_end"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	// Link opens the subscription in the customer's account, to keep or cancel it.
	Link string `json:"link,omitempty"`
}

// PaymentFailed tells a customer a renewal charge failed and what happens next.
type PaymentFailed struct {
	Name          string `json:"name"`
	Plan          string `json:"plan"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	DeclineReason string `json:"decline_reason,omitempty"`
	// NextRetry is when the charge is tried again; nil when no retry is left.
	NextRetry *time.Time `json:"next_retry,omitempty"`
	// CancelsAt is when the subscription is (or was) canceled if payment does not succeed.
	CancelsAt *time.Time `json:"cancels_at,omitempty"`
	// Final is true when that was the last attempt and the subscription has been canceled.
	Final bool `json:"final"`
	// Link signs the customer in and lands on replacing the card.
	Link string `json:"link,omitempty"`
}

// SignInLink carries a magic link: following it within ExpiresIn signs the customer in once.
type SignInLink struct {
	Name      string        `json:"name"`
	URL       string        `json:"url"`
	ExpiresIn time.Duration `json:"expires_in"`
}

// Cancellation confirms that a subscription was canceled.
type Cancellation struct {
	Name        string    `json:"name"`
	Plan        string    `json:"plan"`
	EffectiveAt time.Time `json:"effective_at"`
	// Immediate is true when access ended at once rather than at the end of the paid period.
	Immediate bool `json:"immediate"`
}

// RenewalRefunded tells a customer that a renewal charge was refunded because the renewal was
// refused after the money moved: the subscription was canceled while it was being charged.
type RenewalRefunded struct {
	Name     string `json:"name"`
	Plan     string `json:"plan"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Reason says why the renewal was refused, for the customer.
	Reason string `json:"reason"`
}

// Money is an amount of minor units of a lowercase ISO 4217 currency.
type Money struct {
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
}

// DailySummary is one UTC day's business figures, for the ops team.
type DailySummary struct {
	// Day is the UTC day summarized, as YYYY-MM-DD.
	Day               string `json:"day"`
	NewOrders         int    `json:"new_orders"`
	NewSubscriptions  int    `json:"new_subscriptions"`
	RenewalsSucceeded int    `json:"renewals_succeeded"`
	RenewalsFailed    int    `json:"renewals_failed"`
	Cancellations     int    `json:"cancellations"`
	// InDunning is the number of past-due subscriptions when the figures were computed.
	InDunning int `json:"in_dunning"`
	// Revenue is charges less refunds per currency, ordered by currency.
	Revenue []Money `json:"revenue"`
}

// Kind implements Data.
func (Receipt) Kind() string { return KindReceipt }

// Kind implements Data.
func (TrialEnding) Kind() string { return KindTrialEnding }

// Kind implements Data.
func (PaymentFailed) Kind() string { return KindPaymentFailed }

// Kind implements Data.
func (Cancellation) Kind() string { return KindCancellation }

// Kind implements Data.
func (DailySummary) Kind() string { return KindDailySummary }

// Kind implements Data.
func (RenewalRefunded) Kind() string { return KindRenewalRefunded }

// Kind implements Data.
func (SignInLink) Kind() string { return KindSignInLink }

// Content is a rendered email, ready to be addressed and sent.
type Content struct {
	Kind    string
	Subject string
	Text    string
	HTML    string
}

// Render renders d with its kind's subject, text and HTML templates.
func Render(d Data) (Content, error) {
	t, ok := templates[d.Kind()]
	if !ok {
		return Content{}, fmt.Errorf("mailer: no template for kind %q", d.Kind())
	}
	c := Content{Kind: d.Kind()}
	var b bytes.Buffer
	if err := t.subject.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mailer: render %s subject: %w", d.Kind(), err)
	}
	// Names and plans can hold line breaks; a subject must be one line.
	c.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.text.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mailer: render %s text: %w", d.Kind(), err)
	}
	c.Text = b.String()
	b.Reset()
	if err := t.html.Execute(&b, d); err != nil {
		return Content{}, fmt.Errorf("mailer: render %s HTML: %w", d.Kind(), err)
	}
	c.HTML = b.String()
	return c, nil
}

type kindTemplates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

// dateLayout is how dates appear in emails. Times are shown in UTC and say so, since the store
// does not know the customer's time zone.
const dateLayout = "January 2, 2006"

var funcs = map[string]any{
	"money":   FormatMoney,
	"minutes": func(d time.Duration) int { return int(d.Minutes()) },
	"date":    func(t time.Time) string { return t.UTC().Format(dateLayout) },
	"datetime": func(t time.Time) string {
		return t.UTC().Format(dateLayout + " at 15:04 UTC")
	},
}

// templates holds every kind's templates, parsed once; a template that does not parse is a
// programming error and stops the program at start.
var templates = map[string]kindTemplates{
	KindReceipt:         mustParse(KindReceipt, receiptSubject, receiptText, receiptHTML),
	KindTrialEnding:     mustParse(KindTrialEnding, trialEndingSubject, trialEndingText, trialEndingHTML),
	KindPaymentFailed:   mustParse(KindPaymentFailed, paymentFailedSubject, paymentFailedText, paymentFailedHTML),
	KindCancellation:    mustParse(KindCancellation, cancellationSubject, cancellationText, cancellationHTML),
	KindDailySummary:    mustParse(KindDailySummary, dailySummarySubject, dailySummaryText, dailySummaryHTML),
	KindRenewalRefunded: mustParse(KindRenewalRefunded, renewalRefundedSubject, renewalRefundedText, renewalRefundedHTML),
	KindSignInLink:      mustParse(KindSignInLink, signInLinkSubject, signInLinkText, signInLinkHTML),
}

func mustParse(kind, subject, text, html string) kindTemplates {
	opt := "missingkey=error"
	return kindTemplates{
		subject: texttemplate.Must(texttemplate.New(kind + ".subject").Option(opt).Funcs(funcs).Parse(subject)),
		text:    texttemplate.Must(texttemplate.New(kind + ".txt").Option(opt).Funcs(funcs).Parse(text + textFooter)),
		html:    htmltemplate.Must(htmltemplate.New(kind + ".html").Option(opt).Funcs(funcs).Parse(htmlHeader + html + htmlFooter)),
	}
}

const textFooter = `
-- 
cartflow
`

const htmlHeader = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{template "title" .}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #222;">
`

const htmlFooter = `
<p style="color: #777;">cartflow</p>
</body></html>
`

const receiptSubject = `{{if .Renewal}}Your {{.Description}} renewal receipt{{else}}Your cartflow receipt{{end}} ({{money .Amount .Currency}})`

const receiptText = `{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}

{{if .Renewal}}Your subscription was renewed and your payment went through.{{else}}Thank you for your order. Your payment went through.{{end}}

Order:       {{.OrderID}}
Item:        {{.Description}}
Amount paid: {{money .Amount .Currency}}
{{- with .PeriodEnd}}
Paid until:  {{date .}}{{end}}
{{- with .Link}}

See your order: {{.}}{{end}}
`

const receiptHTML = `{{define "title"}}Receipt{{end}}
<p>{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}</p>
<p>{{if .Renewal}}Your subscription was renewed and your payment went through.{{else}}Thank you for your order. Your payment went through.{{end}}</p>
<table>
<tr><th align="left">Order</th><td>{{.OrderID}}</td></tr>
<tr><th align="left">Item</th><td>{{.Description}}</td></tr>
<tr><th align="left">Amount paid</th><td>{{money .Amount .Currency}}</td></tr>
{{- with .PeriodEnd}}
<tr><th align="left">Paid until</th><td>{{date .}}</td></tr>{{end}}
</table>
{{- with .Link}}
<p><a href="{{.}}">See your order</a></p>{{end}}`

const trialEndingSubject = `Your {{.Plan}} trial ends on {{date .TrialEnd}}`

const trialEndingText = `{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}

Your free trial of {{.Plan}} ends on {{datetime .TrialEnd}}.
Then we will charge {{money .Amount .Currency}} to your saved payment method, and your subscription continues.

If you do not want to continue, cancel before {{datetime .TrialEnd}} and you will not be charged.
{{- with .Link}}
Manage your subscription: {{.}}{{end}}
`

const trialEndingHTML = `{{define "title"}}Your trial ends soon{{end}}
<p>{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}</p>
<p>Your free trial of <strong>{{.Plan}}</strong> ends on <strong>{{datetime .TrialEnd}}</strong>.
Then we will charge <strong>{{money .Amount .Currency}}</strong> to your saved payment method, and your subscription continues.</p>
<p>If you do not want to continue, cancel before {{datetime .TrialEnd}} and you will not be charged.</p>
{{- with .Link}}
<p><a href="{{.}}">Manage your subscription</a></p>{{end}}`

const paymentFailedSubject = `{{if .Final}}Your {{.Plan}} subscription has been canceled{{else}}Action needed: your {{.Plan}} payment failed{{end}}`

// "What happens next" always tells the customer one of: the next retry's date, the
// cancellation to come if payment does not succeed, or the cancellation that happened. The
// text and HTML templates follow the same branches.
const paymentFailedText = `{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}

We could not charge {{money .Amount .Currency}} for your {{.Plan}} subscription{{with .DeclineReason}} (reason: {{.}}){{end}}.

What happens next:
{{- if .Final}}
This was our last attempt, so your subscription has been canceled{{with .CancelsAt}} as of {{datetime .}}{{end}}.
To subscribe again, update your payment method and start a new subscription.
{{- else}}
{{- with .NextRetry}}
We will try the payment again on {{datetime .}}.{{else}}
We will not try this payment again.{{end}}
{{- with .CancelsAt}}
If the payment has not succeeded by {{datetime .}}, your subscription will be canceled.{{else}}
If the payment does not succeed, your subscription will be canceled.{{end}}
Please update your payment method to keep your subscription.
{{- with .Link}}
Update your card: {{.}}{{end}}
{{- end}}
`

const paymentFailedHTML = `{{define "title"}}Payment failed{{end}}
<p>{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}</p>
<p>We could not charge <strong>{{money .Amount .Currency}}</strong> for your <strong>{{.Plan}}</strong> subscription{{with .DeclineReason}} (reason: {{.}}){{end}}.</p>
<h3>What happens next</h3>
{{- if .Final}}
<p>This was our last attempt, so your subscription has been canceled{{with .CancelsAt}} as of {{datetime .}}{{end}}.
To subscribe again, update your payment method and start a new subscription.</p>
{{- else}}
<p>{{with .NextRetry}}We will try the payment again on <strong>{{datetime .}}</strong>.{{else}}We will not try this payment again.{{end}}
{{with .CancelsAt}}If the payment has not succeeded by {{datetime .}}, your subscription will be canceled.{{else}}If the payment does not succeed, your subscription will be canceled.{{end}}</p>
<p><strong>Please update your payment method to keep your subscription.</strong></p>
{{- with .Link}}
<p><a href="{{.}}">Update your card</a></p>{{end}}
{{- end}}`

const cancellationSubject = `{{if .Immediate}}Your {{.Plan}} subscription is canceled{{else}}Your {{.Plan}} subscription will end on {{date .EffectiveAt}}{{end}}`

const cancellationText = `{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}

{{if .Immediate}}Your {{.Plan}} subscription was canceled on {{datetime .EffectiveAt}}. You will not be charged again.{{else}}Your {{.Plan}} subscription is canceled. You keep access until {{datetime .EffectiveAt}}, and you will not be charged again.{{end}}

We are sorry to see you go.
`

const cancellationHTML = `{{define "title"}}Subscription canceled{{end}}
<p>{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}</p>
<p>{{if .Immediate}}Your <strong>{{.Plan}}</strong> subscription was canceled on {{datetime .EffectiveAt}}. You will not be charged again.{{else}}Your <strong>{{.Plan}}</strong> subscription is canceled. You keep access until <strong>{{datetime .EffectiveAt}}</strong>, and you will not be charged again.{{end}}</p>
<p>We are sorry to see you go.</p>`

const renewalRefundedSubject = `Your {{.Plan}} renewal payment of {{money .Amount .Currency}} has been refunded`

const renewalRefundedText = `{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}

We charged {{money .Amount .Currency}} to renew your {{.Plan}} subscription, but the renewal could not go ahead: {{.Reason}}. The full amount has been refunded to your payment method; depending on your bank, it may take a few days to appear.

You will not be charged again for this subscription.
`

const renewalRefundedHTML = `{{define "title"}}Renewal payment refunded{{end}}
<p>{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}</p>
<p>We charged <strong>{{money .Amount .Currency}}</strong> to renew your <strong>{{.Plan}}</strong> subscription, but the renewal could not go ahead: {{.Reason}}. The full amount has been refunded to your payment method; depending on your bank, it may take a few days to appear.</p>
<p>You will not be charged again for this subscription.</p>`

const signInLinkSubject = `Your cartflow sign-in link`

const signInLinkText = `{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}

Sign in to cartflow with this link:

{{.URL}}

It works once, within {{minutes .ExpiresIn}} minutes. If you did not ask for it, ignore this email: nobody can sign in without the link.
`

const signInLinkHTML = `{{define "title"}}Sign in to cartflow{{end}}
<p>{{with .Name}}Hi {{.}},{{else}}Hello,{{end}}</p>
<p><a href="{{.URL}}">Sign in to cartflow</a></p>
<p>The link works once, within {{minutes .ExpiresIn}} minutes. If you did not ask for it, ignore this email: nobody can sign in without the link.</p>`

const dailySummarySubject = `cartflow daily summary for {{.Day}}`

const dailySummaryText = `Daily summary for {{.Day}} (UTC)

New orders:          {{.NewOrders}}
Revenue:             {{range $i, $m := .Revenue}}{{if $i}}, {{end}}{{money $m.Amount $m.Currency}}{{else}}none{{end}}
New subscriptions:   {{.NewSubscriptions}}
Renewals succeeded:  {{.RenewalsSucceeded}}
Renewals failed:     {{.RenewalsFailed}}
Cancellations:       {{.Cancellations}}
In dunning (now):    {{.InDunning}}

Revenue is charges less refunds. "In dunning" counts past-due subscriptions when this summary was computed.
`

const dailySummaryHTML = `{{define "title"}}Daily summary {{.Day}}{{end}}
<h2>Daily summary for {{.Day}} (UTC)</h2>
<table>
<tr><th align="left">New orders</th><td>{{.NewOrders}}</td></tr>
<tr><th align="left">Revenue</th><td>{{range $i, $m := .Revenue}}{{if $i}}<br>{{end}}{{money $m.Amount $m.Currency}}{{else}}none{{end}}</td></tr>
<tr><th align="left">New subscriptions</th><td>{{.NewSubscriptions}}</td></tr>
<tr><th align="left">Renewals succeeded</th><td>{{.RenewalsSucceeded}}</td></tr>
<tr><th align="left">Renewals failed</th><td>{{.RenewalsFailed}}</td></tr>
<tr><th align="left">Cancellations</th><td>{{.Cancellations}}</td></tr>
<tr><th align="left">In dunning (now)</th><td>{{.InDunning}}</td></tr>
</table>
<p>Revenue is charges less refunds. "In dunning" counts past-due subscriptions when this summary was computed.</p>`
