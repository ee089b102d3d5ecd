package kit_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/cartflow/cartflow/internal/dev/fake/kit"
)

func TestCopies(t *testing.T) {
	t.Parallel()
	type item struct{ n int }
	items := []*item{{1}, {2}}
	if got := kit.Map(items, func(i *item) string { return strconv.Itoa(i.n) }); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("Map = %q", got)
	}
	pairs := kit.FlatMap(items, func(i *item) []int { return []int{i.n, i.n * 10} })
	if b, _ := json.Marshal(pairs); string(b) != "[1,10,2,20]" {
		t.Errorf("FlatMap = %s", b)
	}
	// Empty listings stay lists in JSON.
	none := kit.Map([]*item(nil), func(i *item) int { return i.n })
	flat := kit.FlatMap(items, func(*item) []int { return nil })
	if a, _ := json.Marshal(none); string(a) != "[]" {
		t.Errorf("Map of nothing = %s", a)
	}
	if b, _ := json.Marshal(flat); string(b) != "[]" {
		t.Errorf("FlatMap of nothing = %s", b)
	}

	byName := map[string]*item{"a": items[0]}
	if n, ok := kit.Lookup(byName, "a", func(i *item) int { return i.n }); !ok || n != 1 {
		t.Errorf("Lookup(a) = %d, %v", n, ok)
	}
	if n, ok := kit.Lookup(byName, "b", func(i *item) int { return i.n }); ok || n != 0 {
		t.Errorf("Lookup(b) = %d, %v", n, ok)
	}
}
