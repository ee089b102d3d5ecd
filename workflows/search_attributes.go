package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Custom search attributes, so that ops find a customer's runs in the Temporal UI and CLI:
//
//	CustomerEmail = 'ada@example.com'   (or its hash, per SEARCH_EMAIL_MODE)
//	OrderId = '…'   CheckoutStatus = 'failed'   Amount > 10000
//
// The BFF sets CustomerEmail and CheckoutStatus when it starts a checkout; the workflow keeps
// OrderId, Amount and CheckoutStatus up to date. The worker makes sure they exist at start.
var (
	SearchCustomerEmail  = temporal.NewSearchAttributeKeyKeyword("CustomerEmail")
	SearchOrderID        = temporal.NewSearchAttributeKeyKeyword("OrderId")
	SearchCheckoutStatus = temporal.NewSearchAttributeKeyKeyword("CheckoutStatus")
	SearchAmount         = temporal.NewSearchAttributeKeyInt64("Amount")
)

// SearchAttributes lists cartflow's custom search attributes with their types, for registering and checking them.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SearchCustomerEmail.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchOrderID.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchCheckoutStatus.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchAmount.GetName():         enumspb.INDEXED_VALUE_TYPE_INT,
}
