// Package runbook holds the tests that keep docs/runbook.md true to the
// library: its error table names, next to each sentinel, the text the
// library logs for it, and the logs of a real failure contain that text.
package runbook
