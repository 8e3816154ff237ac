package promtest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coursebuilder/realtime-go/examples/internal/promtest"
)

func TestShorten(t *testing.T) {
	in := "      - alert: X\n        expr: |\n          rate(a[10m]) > 0 or (b unless b offset 5m) or increase(c[15m])\n        for: 2m\n      - alert: Y\n        for: 15m\n"
	got, err := promtest.Shorten([]byte(in), promtest.Short)
	if err != nil {
		t.Fatal(err)
	}
	want := "      - alert: X\n        expr: |\n          rate(a[20s]) > 0 or (b unless b offset 10s) or increase(c[30s])\n        for: 2s\n      - alert: Y\n        for: 15s\n"
	if string(got) != want {
		t.Errorf("Shorten:\n%s\nwant\n%s", got, want)
	}
	if _, err := promtest.Shorten([]byte("expr: rate(a[1h30m])\n"), promtest.Short); err == nil {
		t.Error("a range of two units was left unshortened without an error")
	}
}

// Every range, offset and for: of the repository's rules is shortened: no
// minute is left in the copy the Prometheus tests load.
func TestShortenAlertsYML(t *testing.T) {
	b, err := os.ReadFile("../../../monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := promtest.Shorten(b, promtest.Short)
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, l := range strings.Split(string(got), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			rules = append(rules, l)
		}
	}
	if m := regexp.MustCompile(`\[[0-9]+[mhd][^\]]*\]|offset [0-9]+[mhd]|for: [0-9]+[mhd]`).FindString(strings.Join(rules, "\n")); m != "" {
		t.Errorf("left unshortened: %s", m)
	}
}
