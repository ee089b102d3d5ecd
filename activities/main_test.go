//go:build integration

package activities_test

import (
	"os"
	"testing"

	"github.com/cartflow/cartflow/internal/dev/testdb"
)

// The package's integration tests share one PostgreSQL server (see testdb), started once rather
// than per test; each test that needs a database gets a migrated one of its own from pg.NewDB.
// The untagged unit tests never touch it, so without the tag nothing is started.
var pg *testdb.Server

func TestMain(m *testing.M) { os.Exit(testdb.Main(m, &pg)) }
