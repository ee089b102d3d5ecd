package workflows

import "github.com/cartflow/cartflow/activities"

// a names activity methods for ExecuteActivity; its value is never used, only its methods' names.
var a *activities.Activities
