//go:build chaos

package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one scenario's line of the table.
type row struct {
	Scenario string `json:"scenario"`
	// Faults says what the scenario did to the stack.
	Faults string `json:"faults"`
	// Started counts the checkouts sent (for renewals: the due subscriptions).
	Started int `json:"started"`
	// Completed counts orders completed and paid once (renewals: renewed once for the period).
	Completed int `json:"completed"`
	// FailedCleanly counts final outcomes other than completed: declined, failed with a code,
	// refunded.
	FailedCleanly int `json:"failed_cleanly"`
	// Refused counts checkouts the BFF never took (503 to the end), with nothing started or charged.
	Refused int `json:"refused"`
	// Lost counts checkouts the BFF took, or that left a trace, whose order never became final;
	// and requests with no answer and no trace.
	Lost int `json:"lost"`
	// DoubleCharged counts charge keys (renewals: subscription periods) for which Stripe keeps
	// more than one payment, net of refunds.
	DoubleCharged int `json:"double_charged"`
	// Orphans counts payments Stripe keeps whose order does not exist or did not end paid.
	Orphans int `json:"orphans"`
	// Mismatched counts other disagreements between the order, the ledger and the provider.
	Mismatched int `json:"mismatched"`
	// NotFoundAfterAccept counts checkouts the BFF answered 202 whose status URL then answered
	// 404: the storefront's confirmation page would show "not found" for a checkout that runs.
	NotFoundAfterAccept int `json:"not_found_after_202"`
	// ServerErrors counts 5xx answers other than 503, the most of the client's count and the
	// BFF's own metrics.
	ServerErrors int `json:"server_errors_not_503"`
	// Answers counts every answer the scenario's clients got, by status.
	Answers map[string]int `json:"answers"`
	Seconds float64        `json:"seconds"`
	// Findings describe every lost order, double charge, orphan, mismatch and unexpected answer,
	// with the keys to look up.
	Findings []string `json:"findings"`
	// Notes are what the scenario observed that is not a fault: retries, timings, counts.
	Notes []string `json:"notes,omitempty"`

	// lostUnderFault names checkouts lost while a fault that must be worked through (a slow
	// provider) lasted, and why, whatever became of them once it ended.
	lostUnderFault map[string]string
}

func (r *row) finding(format string, args ...any) {
	r.Findings = append(r.Findings, fmt.Sprintf(format, args...))
}

func (r *row) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *row) lost(key, why string) {
	r.Lost++
	r.finding("%s: LOST: %s", key, why)
}

func (r *row) mismatch(key, why string) {
	r.Mismatched++
	r.finding("%s: MISMATCH: %s", key, why)
}

// failed says the row breaks the suite's goal.
func (r row) failed() bool {
	return r.Lost+r.DoubleCharged+r.Orphans+r.Mismatched+r.ServerErrors+r.NotFoundAfterAccept > 0 || len(r.Findings) > 0
}

// report is the whole run, as written to JSON.
type report struct {
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"seconds"`
	Flags     map[string]string `json:"flags"`
	Rows      []row             `json:"rows"`
	Incidents []incident        `json:"incidents"`
	Logs      string            `json:"logs"`
}

// table renders the rows, one per scenario.
func (rep report) table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tstarted\tcompleted\tfailed cleanly\tlost\tdouble-charged\torphans\t5xx≠503\trefused\tmismatched\t404 after 202\tseconds\t")
	var total row
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", r.Scenario, r.Started, r.Completed, r.FailedCleanly,
			r.Lost, r.DoubleCharged, r.Orphans, r.ServerErrors, r.Refused, r.Mismatched, r.NotFoundAfterAccept, r.Seconds)
		total.Started += r.Started
		total.Completed += r.Completed
		total.FailedCleanly += r.FailedCleanly
		total.Lost += r.Lost
		total.DoubleCharged += r.DoubleCharged
		total.Orphans += r.Orphans
		total.ServerErrors += r.ServerErrors
		total.Refused += r.Refused
		total.Mismatched += r.Mismatched
		total.NotFoundAfterAccept += r.NotFoundAfterAccept
	}
	fmt.Fprintf(w, "total\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", total.Started, total.Completed, total.FailedCleanly,
		total.Lost, total.DoubleCharged, total.Orphans, total.ServerErrors, total.Refused, total.Mismatched, total.NotFoundAfterAccept, rep.Seconds)
	_ = w.Flush()
	b.WriteString("\nfaults:\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "  %-20s %s\n", r.Scenario, r.Faults)
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  %-20s   %s\n", "", n)
		}
	}
	for _, r := range rep.Rows {
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "FINDING %s: %s\n", r.Scenario, f)
		}
	}
	for _, in := range rep.Incidents {
		if !in.Planned {
			fmt.Fprintf(&b, "UNPLANNED %s %s: %s\n", in.At.Format(time.TimeOnly), in.Component, in.What)
		}
	}
	return b.String()
}

// write puts the report into dir as chaos-<time>.json and returns its path.
func (rep report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "chaos-"+rep.Started.Format("20060102T150405Z")+".json")
	return path, os.WriteFile(path, append(raw, '\n'), 0o644)
}
