package testdb

import (
	"strings"
	"testing"
)

func TestDBNameFitsAndStaysUnique(t *testing.T) {
	long := "TestSomething/" + strings.Repeat("a very long subtest name, ", 5)
	a, b := dbName(123456, 1, long), dbName(123456, 2, long)
	if len(a) > 63 || len(b) > 63 {
		t.Fatalf("names of %d and %d bytes, want at most PostgreSQL's 63", len(a), len(b))
	}
	if a == b {
		t.Fatalf("two tests of one process share the name %q", a)
	}
	if other := dbName(654321, 1, long); other == a {
		t.Fatalf("two processes share the name %q", a)
	}
	if got, want := dbName(7, 3, "TestX/Case #1 (ünïcode)"), "t7_3_testx_case_1_n_code_"; got != want {
		t.Fatalf("dbName = %q, want %q", got, want)
	}
}

func TestFromURLNeverQuotesTheURL(t *testing.T) {
	const secret = "s3cret-pw"
	_, err := fromURL("postgres://app:" + secret + "@127.0.0.1:notaport/cartflow")
	if err == nil {
		t.Fatal("a URL with a bad port was accepted")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("the error quotes DATABASE_URL: %v", err)
	}
}
