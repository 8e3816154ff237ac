package flags

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseMode(t *testing.T) {
	cases := map[string]Mode{
		"legacy": Legacy, " LEGACY ": Legacy, "party": Legacy, "partykit": Legacy, "off": Legacy,
		"shadow": Shadow, "Shadow\n": Shadow,
		"primary": Primary, "realtime-primary": Primary,
		"realtime": Realtime, "realtime-only": Realtime, "inngest": Realtime,
	}
	for in, want := range cases {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "true", "on", "turbo", "shadow-mode"} {
		if got, err := ParseMode(in); err == nil || got != Legacy {
			t.Errorf("ParseMode(%q) = %v, %v; want legacy and an error", in, got, err)
		}
	}
	for m := Legacy; m <= Realtime; m++ {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("round trip of %v: %v, %v", m, got, err)
		}
	}
	if s := Mode(9).String(); s != "Mode(9)" {
		t.Errorf("Mode(9).String() = %q", s)
	}
}

func TestModePredicates(t *testing.T) {
	cases := []struct {
		m                      Mode
		legacy, realtime, rtOK bool
	}{
		{Legacy, true, false, false},
		{Shadow, true, true, false},
		{Primary, true, true, true},
		{Realtime, false, true, true},
	}
	for _, c := range cases {
		if c.m.PublishesLegacy() != c.legacy || c.m.PublishesRealtime() != c.realtime || c.m.RealtimeCounts() != c.rtOK {
			t.Errorf("%v: predicates wrong", c.m)
		}
	}
}

func TestScopeOf(t *testing.T) {
	cases := map[string]Scope{
		"videoResource.created":  ScopeVideoUpload,
		"video.upload.completed": ScopeVideoUpload,
		"video.asset.ready":      ScopeVideoReady,
		"video.asset.errored":    ScopeVideoErrored,
		"transcript.ready":       ScopeTranscript,
		"ai.message":             ScopeAIStream,
		"resource.chat":          ScopeDefault,
		"":                       ScopeDefault,
	}
	for in, want := range cases {
		if got := ScopeOf(in); got != want {
			t.Errorf("ScopeOf(%q) = %s, want %s", in, got, want)
		}
	}
	if k := ScopeVideoReady.ModeKey(); k != "realtime-video-ready-mode" {
		t.Errorf("ModeKey = %s", k)
	}
	if len(Scopes) != len(knownScopes) {
		t.Fatalf("Scopes and knownScopes differ")
	}
	for i := range Scopes {
		if Scopes[i] != knownScopes[i] {
			t.Errorf("Scopes[%d] = %s, knownScopes[%d] = %s", i, Scopes[i], i, knownScopes[i])
		}
	}
}

func TestFixed(t *testing.T) {
	var r Resolver = Fixed(Primary)
	if got := r.Mode(context.Background(), ScopeAIStream, "r"); got != Primary {
		t.Errorf("Fixed(Primary) = %v", got)
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"legacy", "shadow", "primary", "realtime", "PARTY", " inngest\t", "off", "", "realtime-", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			if m != Legacy {
				t.Fatalf("ParseMode(%q) failed with %v, not legacy", s, m)
			}
			if !strings.HasPrefix(err.Error(), "flags: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		if m > Realtime {
			t.Fatalf("ParseMode(%q) = %d, out of range", s, m)
		}
		if back, err := ParseMode(m.String()); err != nil || back != m {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
		// Case and surrounding space never matter.
		if m2, err := ParseMode(" " + strings.ToUpper(s) + "\n"); err != nil || m2 != m {
			t.Fatalf("ParseMode of the upper-cased %q = %v, %v; want %v", s, m2, err, m)
		}
	})
}

func FuzzParseEnvMode(f *testing.F) {
	for _, s := range []string{"true", "FALSE", "1", "0", "yes", "no", "on", "off", "enabled", "shadow", "primary", "realtime", "", "ture", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseEnvMode(s)
		b, berr := parseEnvBool(s)
		pm, perr := ParseMode(s)
		switch {
		case berr == nil:
			if err != nil || (b && m != Shadow) || (!b && m != Legacy) {
				t.Fatalf("boolean %q → %v, %v; want shadow or legacy", s, m, err)
			}
		case perr == nil:
			if err != nil || m != pm {
				t.Fatalf("mode %q → %v, %v; want %v as ParseMode says", s, m, err, pm)
			}
		default:
			if err == nil || m != Legacy {
				t.Fatalf("garbage %q → %v, %v; want legacy and an error", s, m, err)
			}
			if !utf8.ValidString(s) {
				return
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "flags: ") || len(msg) > 512 {
				t.Fatalf("error %q: want the package prefix and a bounded length", msg)
			}
		}
	})
}
