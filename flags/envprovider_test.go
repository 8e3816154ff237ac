package flags

import (
	"context"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
)

// setenv sets env in the process environment for the rest of the test
// (t.Setenv restores it); TestMain started from none of EnvVariables.
func setenv(t testing.TB, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// TestEnvProviderTable is the precedence table of the package documentation,
// run through an Evaluator as a deployment would.
func TestEnvProviderTable(t *testing.T) {
	type want map[Scope]Mode // scopes not listed want Legacy
	cases := []struct {
		name string
		env  map[string]string
		want want
	}{
		{"nothing set", nil, want{}},
		{"plan: upload true", map[string]string{"ENABLE_REALTIME_VIDEO_UPLOAD": "true"}, want{ScopeVideoUpload: Shadow}},
		{"plan: ready true", map[string]string{"ENABLE_REALTIME_VIDEO_READY": "TRUE"}, want{ScopeVideoReady: Shadow}},
		{"plan: transcript true", map[string]string{"ENABLE_REALTIME_TRANSCRIPT": "1"}, want{ScopeTranscript: Shadow}},
		{"enable false", map[string]string{"ENABLE_REALTIME_VIDEO_READY": "false"}, want{}},
		{"enable takes a mode", map[string]string{"ENABLE_REALTIME_VIDEO_READY": "primary"}, want{ScopeVideoReady: Primary}},
		{"enable for other scopes", map[string]string{"ENABLE_REALTIME_VIDEO_ERRORED": "yes", "ENABLE_REALTIME_AI_STREAM": "realtime"},
			want{ScopeVideoErrored: Shadow, ScopeAIStream: Realtime}},
		{"per-app video switch", map[string]string{"ENABLE_REALTIME_VIDEO_REALTIME": "true"},
			want{ScopeVideoUpload: Shadow, ScopeVideoReady: Shadow, ScopeVideoErrored: Shadow}},
		{"per-app video switch takes a mode", map[string]string{"ENABLE_REALTIME_VIDEO_REALTIME": "realtime"},
			want{ScopeVideoUpload: Realtime, ScopeVideoReady: Realtime, ScopeVideoErrored: Realtime}},
		{"per-scope beats per-app, on", map[string]string{"ENABLE_REALTIME_VIDEO_REALTIME": "false", "ENABLE_REALTIME_VIDEO_READY": "true"},
			want{ScopeVideoReady: Shadow}},
		{"per-scope beats per-app, off", map[string]string{"ENABLE_REALTIME_VIDEO_REALTIME": "primary", "ENABLE_REALTIME_VIDEO_READY": "off"},
			want{ScopeVideoUpload: Primary, ScopeVideoErrored: Primary}},
		{"explicit mode beats enable", map[string]string{"REALTIME_VIDEO_READY_MODE": "realtime", "ENABLE_REALTIME_VIDEO_READY": "false"},
			want{ScopeVideoReady: Realtime}},
		{"explicit legacy beats enable", map[string]string{"REALTIME_VIDEO_UPLOAD_MODE": "legacy", "ENABLE_REALTIME_VIDEO_UPLOAD": "true", "ENABLE_REALTIME_VIDEO_REALTIME": "true"},
			want{ScopeVideoReady: Shadow, ScopeVideoErrored: Shadow}},
		{"explicit mode per scope", map[string]string{"REALTIME_AI_STREAM_MODE": "primary", "REALTIME_TRANSCRIPT_MODE": "Shadow"},
			want{ScopeAIStream: Primary, ScopeTranscript: Shadow}},
		{"default mode", map[string]string{"REALTIME_DEFAULT_MODE": "shadow"},
			want{ScopeVideoUpload: Shadow, ScopeVideoReady: Shadow, ScopeVideoErrored: Shadow, ScopeTranscript: Shadow, ScopeAIStream: Shadow, ScopeDefault: Shadow}},
		{"scope beats default mode", map[string]string{"REALTIME_DEFAULT_MODE": "shadow", "ENABLE_REALTIME_TRANSCRIPT": "false"},
			want{ScopeVideoUpload: Shadow, ScopeVideoReady: Shadow, ScopeVideoErrored: Shadow, ScopeAIStream: Shadow, ScopeDefault: Shadow}},
		{"video switch is not transcript's", map[string]string{"ENABLE_REALTIME_VIDEO_REALTIME": "true"},
			want{ScopeVideoUpload: Shadow, ScopeVideoReady: Shadow, ScopeVideoErrored: Shadow}},
		{"blank is unset", map[string]string{"REALTIME_VIDEO_READY_MODE": "  ", "ENABLE_REALTIME_VIDEO_READY": "true"}, want{ScopeVideoReady: Shadow}},
		{"kill switch beats everything", map[string]string{"REALTIME_KILL_SWITCH": "true", "REALTIME_VIDEO_READY_MODE": "realtime", "REALTIME_DEFAULT_MODE": "primary"}, want{}},
		{"kill switch off", map[string]string{"REALTIME_KILL_SWITCH": "off", "REALTIME_VIDEO_READY_MODE": "realtime"}, want{ScopeVideoReady: Realtime}},
		{"kill switch blank", map[string]string{"REALTIME_KILL_SWITCH": "", "REALTIME_VIDEO_READY_MODE": "realtime"}, want{ScopeVideoReady: Realtime}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setenv(t, tc.env)
			f := newFixture(t, newClient(t, NewEnvProvider(nil)), Options{})
			for _, s := range Scopes {
				if got := f.ev.Mode(context.Background(), s, room); got != tc.want[s] {
					t.Errorf("%s: Mode = %v, want %v", s, got, tc.want[s])
				}
			}
			f.wantFallbacks(t, map[string]int64{})
		})
	}
}

// TestEnvProviderErrors checks what a typo does: the flag it feeds becomes a
// counted fallback to Legacy, and other scopes are unaffected.
func TestEnvProviderErrors(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		scope Scope
		key   string
	}{
		{"explicit mode takes no boolean", map[string]string{"REALTIME_VIDEO_READY_MODE": "true"}, ScopeVideoReady, ScopeVideoReady.ModeKey()},
		{"enable typo", map[string]string{"ENABLE_REALTIME_TRANSCRIPT": "ture", "REALTIME_DEFAULT_MODE": "shadow"}, ScopeTranscript, ScopeTranscript.ModeKey()},
		{"video switch typo", map[string]string{"ENABLE_REALTIME_VIDEO_REALTIME": "maybe"}, ScopeVideoUpload, ScopeVideoUpload.ModeKey()},
		{"default typo", map[string]string{"REALTIME_DEFAULT_MODE": "shadw"}, ScopeAIStream, ScopeDefault.ModeKey()},
		{"kill switch typo", map[string]string{"REALTIME_KILL_SWITCH": "yes please", "REALTIME_VIDEO_READY_MODE": "realtime"}, ScopeVideoReady, KillSwitchKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setenv(t, tc.env)
			f := newFixture(t, newClient(t, NewEnvProvider(nil)), Options{})
			if got := f.ev.Mode(context.Background(), tc.scope, room); got != Legacy {
				t.Errorf("Mode = %v, want legacy", got)
			}
			f.wantFallbacks(t, map[string]int64{string(tc.scope) + "/parse_error": 1})
			e := f.logs.All()
			if len(e) != 1 || e[0].ContextMap()["flag"] != tc.key {
				t.Fatalf("logs = %v, want one for flag %s", e, tc.key)
			}
			// The error names the variable so the operator knows what to fix.
			msg, _ := e[0].ContextMap()["error"].(string)
			found := false
			for k := range tc.env {
				if strings.Contains(msg, k) && tc.env[k] != "shadow" && tc.env[k] != "realtime" {
					found = true
				}
			}
			if !found {
				t.Errorf("error %q names none of %v", msg, tc.env)
			}
		})
	}
}

// TestEnvProviderDirect checks the provider against the OpenFeature contract
// for keys and types it does not serve.
func TestEnvProviderDirect(t *testing.T) {
	setenv(t, map[string]string{
		"ENABLE_REALTIME_VIDEO_READY": "true", "REALTIME_KILL_SWITCH": "on",
		"REALTIME_QUIZ_MODE": "primary",
	})
	p := NewEnvProvider(nil)
	ctx := context.Background()
	if p.Metadata().Name == "" {
		t.Error("empty provider name")
	}

	s := p.StringEvaluation(ctx, ScopeVideoReady.ModeKey(), "x", nil)
	if s.Value != "shadow" || s.Error() != nil || s.Reason != openfeature.StaticReason || s.Variant != "shadow" ||
		s.FlagMetadata["source"] != "ENABLE_REALTIME_VIDEO_READY" {
		t.Errorf("video-ready = %+v", s)
	}
	s = p.StringEvaluation(ctx, ScopeTranscript.ModeKey(), "dflt", nil)
	if s.Value != "dflt" || s.Error() != nil || s.Reason != openfeature.DefaultReason {
		t.Errorf("unset transcript = %+v, want the default value with reason DEFAULT", s)
	}
	s = p.StringEvaluation(ctx, "realtime-quiz-mode", "", nil)
	if s.Value != "primary" {
		t.Errorf("unknown scope key = %+v, want primary from REALTIME_QUIZ_MODE", s)
	}
	b := p.BooleanEvaluation(ctx, KillSwitchKey, false, nil)
	if !b.Value || b.Error() != nil || b.FlagMetadata["source"] != "REALTIME_KILL_SWITCH" {
		t.Errorf("kill switch = %+v", b)
	}

	codeOf := func(d openfeature.ProviderResolutionDetail) openfeature.ErrorCode {
		return d.ResolutionDetail().ErrorCode
	}
	checks := []struct {
		name string
		got  openfeature.ProviderResolutionDetail
		want openfeature.ErrorCode
	}{
		{"string of unknown key", p.StringEvaluation(ctx, "some-other-flag", "", nil).ProviderResolutionDetail, openfeature.FlagNotFoundCode},
		{"string of realtime--mode", p.StringEvaluation(ctx, "realtime--mode", "", nil).ProviderResolutionDetail, openfeature.FlagNotFoundCode},
		{"string of kill switch", p.StringEvaluation(ctx, KillSwitchKey, "", nil).ProviderResolutionDetail, openfeature.TypeMismatchCode},
		{"bool of mode key", p.BooleanEvaluation(ctx, ScopeVideoReady.ModeKey(), false, nil).ProviderResolutionDetail, openfeature.TypeMismatchCode},
		{"bool of unknown key", p.BooleanEvaluation(ctx, "x", false, nil).ProviderResolutionDetail, openfeature.FlagNotFoundCode},
		{"float of kill switch", p.FloatEvaluation(ctx, KillSwitchKey, 0, nil).ProviderResolutionDetail, openfeature.TypeMismatchCode},
		{"int of mode key", p.IntEvaluation(ctx, ScopeDefault.ModeKey(), 0, nil).ProviderResolutionDetail, openfeature.TypeMismatchCode},
		{"object of unknown key", p.ObjectEvaluation(ctx, "x", nil, nil).ProviderResolutionDetail, openfeature.FlagNotFoundCode},
	}
	for _, c := range checks {
		if got := codeOf(c.got); got != c.want {
			t.Errorf("%s: error code %q, want %q", c.name, got, c.want)
		}
	}
}

// TestEnvProviderDefaultLookup checks the default reads the real
// environment, on every evaluation.
func TestEnvProviderDefaultLookup(t *testing.T) {
	t.Setenv("REALTIME_AI_STREAM_MODE", "primary")
	p := NewEnvProvider(nil)
	if got := p.StringEvaluation(context.Background(), ScopeAIStream.ModeKey(), "", nil).Value; got != "primary" {
		t.Errorf("got %q, want primary", got)
	}
	t.Setenv("REALTIME_AI_STREAM_MODE", "realtime")
	if got := p.StringEvaluation(context.Background(), ScopeAIStream.ModeKey(), "", nil).Value; got != "realtime" {
		t.Errorf("after change got %q, want realtime", got)
	}
}

func TestEnvSourcesNames(t *testing.T) {
	names := func(s Scope) string {
		var out []string
		for _, v := range envSources[s.ModeKey()] {
			out = append(out, v.name)
		}
		return strings.Join(out, " ")
	}
	want := map[Scope]string{
		ScopeVideoUpload:  "REALTIME_VIDEO_UPLOAD_MODE ENABLE_REALTIME_VIDEO_UPLOAD ENABLE_REALTIME_VIDEO_REALTIME",
		ScopeVideoReady:   "REALTIME_VIDEO_READY_MODE ENABLE_REALTIME_VIDEO_READY ENABLE_REALTIME_VIDEO_REALTIME",
		ScopeVideoErrored: "REALTIME_VIDEO_ERRORED_MODE ENABLE_REALTIME_VIDEO_ERRORED ENABLE_REALTIME_VIDEO_REALTIME",
		ScopeTranscript:   "REALTIME_TRANSCRIPT_MODE ENABLE_REALTIME_TRANSCRIPT",
		ScopeAIStream:     "REALTIME_AI_STREAM_MODE ENABLE_REALTIME_AI_STREAM",
		ScopeDefault:      "REALTIME_DEFAULT_MODE",
	}
	for s, w := range want {
		if got := names(s); got != w {
			t.Errorf("%s: %s, want %s", s, got, w)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	c := clip(long)
	if !strings.HasSuffix(c, "…") || len(c) > 64+len("…") || !strings.HasPrefix(long, strings.TrimSuffix(c, "…")) {
		t.Errorf("clip = %q", c)
	}
	if clip("short") != "short" {
		t.Error("clip changed a short value")
	}
}

// TestEnvVariables checks the list against the documented table, and that
// each variable listed is one the provider reads: set alone, it is the
// source of some flag.
func TestEnvVariables(t *testing.T) {
	want := "REALTIME_KILL_SWITCH " +
		"REALTIME_VIDEO_UPLOAD_MODE ENABLE_REALTIME_VIDEO_UPLOAD ENABLE_REALTIME_VIDEO_REALTIME " +
		"REALTIME_VIDEO_READY_MODE ENABLE_REALTIME_VIDEO_READY " +
		"REALTIME_VIDEO_ERRORED_MODE ENABLE_REALTIME_VIDEO_ERRORED " +
		"REALTIME_TRANSCRIPT_MODE ENABLE_REALTIME_TRANSCRIPT " +
		"REALTIME_AI_STREAM_MODE ENABLE_REALTIME_AI_STREAM " +
		"REALTIME_DEFAULT_MODE"
	vars := EnvVariables()
	if got := strings.Join(vars, " "); got != want {
		t.Errorf("EnvVariables() = %s\nwant %s", got, want)
	}
	vars[0] = "changed"
	if EnvVariables()[0] != "REALTIME_KILL_SWITCH" {
		t.Error("EnvVariables returned a shared slice")
	}

	ctx := context.Background()
	for _, v := range EnvVariables() {
		t.Run(v, func(t *testing.T) {
			value := "realtime" // every mode variable accepts a mode name
			if v == "REALTIME_KILL_SWITCH" {
				value = "true"
			}
			t.Setenv(v, value)
			p := NewEnvProvider(nil)
			read := p.BooleanEvaluation(ctx, KillSwitchKey, false, nil).FlagMetadata["source"] == v
			for _, s := range Scopes {
				if p.StringEvaluation(ctx, s.ModeKey(), "", nil).FlagMetadata["source"] == v {
					read = true
				}
			}
			if !read {
				t.Errorf("no flag reads %s", v)
			}
		})
	}
}
