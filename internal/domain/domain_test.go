package domain

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsOnlyTheStandardLibrary: every package may import domain, so domain importing
// anything else would pull that dependency into all of them, and could make an import cycle.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			// Standard library paths have no dot in their first element; module paths do.
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s; internal/domain may import the standard library only", name, path)
			}
		}
	}
}

func TestFinalOrderStatuses(t *testing.T) {
	final := map[OrderStatus]bool{
		OrderCompleted: true, OrderFailed: true, OrderRefunded: true, OrderPartiallyRefunded: true, OrderExpired: true,
	}
	if len(OrderStatuses) != 9 {
		t.Fatalf("OrderStatuses lists %d statuses, want the 9 that orders.status allows", len(OrderStatuses))
	}
	for _, s := range OrderStatuses {
		if got := s.Final(); got != final[s] {
			t.Errorf("%s.Final() = %v, want %v", s, got, final[s])
		}
	}
}

func TestPaymentOutcomeEvents(t *testing.T) {
	for _, tc := range []struct {
		event EventType
		want  bool
	}{
		{EventPaymentSucceeded, true}, {EventPaymentFailed, true},
		{EventRefunded, false}, {EventDisputeOpened, false}, {EventDisputeClosed, false}, {EventOther, false},
	} {
		if got := tc.event.PaymentOutcome(); got != tc.want {
			t.Errorf("%s.PaymentOutcome() = %v, want %v", tc.event, got, tc.want)
		}
	}
}
