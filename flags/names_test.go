package flags

import "testing"

func TestScopeNamesAreInTheirScope(t *testing.T) {
	for _, s := range Scopes {
		names := s.Names()
		if s != ScopeDefault && len(names) == 0 {
			t.Errorf("scope %s has no names", s)
		}
		for _, n := range names {
			if ScopeOf(n) != s {
				t.Errorf("%s.Names() has %q, whose scope is %s", s, n, ScopeOf(n))
			}
		}
	}
	ScopeVideoReady.Names()[0] = "changed"
	if ScopeVideoReady.Names()[0] != "video.asset.ready" {
		t.Error("Names returned the table itself")
	}
	if Scope("nope").Names() != nil || ScopeDefault.Names() != nil {
		t.Error("names for an unknown or the default scope")
	}
}
