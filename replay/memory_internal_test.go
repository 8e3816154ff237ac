package replay

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestMemoryForgetsQuietRooms: rooms nobody appends to any more do not
// stay in memory: they are forgotten on the next call to any room once
// their newest entry is MaxAge old.
func TestMemoryForgetsQuietRooms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := NewMemory(&Retention{MaxAge: time.Minute})
		for _, room := range []string{"a", "b", "c"} {
			if _, err := m.Append(ctx, room, "id", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Second)
		}
		// a is 30s old, b 20s, c 10s; a new append to a keeps it alive.
		if _, err := m.Append(ctx, "a", "id2", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second) // b 70s, c 60s, a 50s
		if _, err := m.After(ctx, "z", 0, 1); err != nil {
			t.Fatal(err)
		}
		if len(m.rooms) != 1 || m.rooms["a"] == nil || m.byNewest.Len() != 1 {
			t.Fatalf("rooms kept: %v (list %d), want only a", keys(m.rooms), m.byNewest.Len())
		}
		// a's first entry (80s old) is dropped when a is read.
		p, err := m.After(ctx, "a", 0, 10)
		if err != nil || len(p.Entries) != 1 || p.Entries[0].ID != "id2" || !p.Truncated {
			t.Fatalf("After(a) = %+v, %v; want only id2, truncated", p, err)
		}
		if len(m.rooms["a"].ids) != 1 {
			t.Fatalf("ids of dropped entries kept: %v", m.rooms["a"].ids)
		}
	})
}

func keys(m map[string]*history) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
