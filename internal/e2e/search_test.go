//go:build integration

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
)

// Ops find a customer's checkout in the Temporal UI by the hashed email, the order and the status.
func TestCheckoutsAreSearchableByCustomerOrderAndStatus(t *testing.T) {
	key := newKey(t)
	email := strings.ToLower(key) + "@example.com"
	code, res := postJSON(t, key, validBody(email, "pm_card_visa"))
	if code != http.StatusCreated || res.Status != "completed" {
		t.Fatalf("purchase: %d %+v", code, res)
	}
	sum := sha256.Sum256([]byte(email))
	query := fmt.Sprintf("CustomerEmail = '%s' AND OrderId = '%s' AND CheckoutStatus = 'completed' AND Amount = 6200",
		hex.EncodeToString(sum[:]), res.OrderID)
	waitFor(t, "the checkout to be searchable", 15*time.Second, func() bool {
		resp, err := temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == "checkout-"+key
	})
	recordHistory(t, "checkout-"+key, "purchase_searchable")
}
