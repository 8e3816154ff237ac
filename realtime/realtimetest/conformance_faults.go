package realtimetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coursebuilder/realtime-go/realtime"
)

// faultRetry is the retry policy of every fault but the long Retry-After.
var faultRetry = realtime.RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

// Attempt timeouts of the faults: short where the server never answers,
// generous where it answers at once.
const (
	noAnswerTimeout = 250 * time.Millisecond
	answerTimeout   = 10 * time.Second
)

// classes are the sentinels that classify a transport failure.
var classes = []error{realtime.ErrUnauthorized, realtime.ErrRejected, realtime.ErrUnavailable, realtime.ErrMaybeDelivered}

type faultCase struct {
	name  string
	fault Fault
	// want are the classes the error matches; it matches none of the others.
	want     []error
	status   int
	attempts int
	// requests the server receives; -1 means Target.UnauthorizedRequests.
	requests   int
	retryAfter time.Duration
	deadline   bool // the error also matches context.DeadlineExceeded
}

func faultCases() []faultCase {
	status := func(code int) Fault {
		return Fault{kind: faultStatus, status: code, Retry: faultRetry, AttemptTimeout: answerTimeout}
	}
	rejected := []error{realtime.ErrRejected}
	unavailable := []error{realtime.ErrUnavailable}
	maybe := []error{realtime.ErrUnavailable, realtime.ErrMaybeDelivered}
	unauthorized := []error{realtime.ErrUnauthorized}
	var cs []faultCase
	for _, code := range []int{400, 404, 409} {
		cs = append(cs, faultCase{name: fmt.Sprint(code), fault: status(code), want: rejected, status: code, attempts: 1, requests: 1})
	}
	for _, code := range []int{401, 403} {
		cs = append(cs, faultCase{name: fmt.Sprint(code), fault: status(code), want: unauthorized, status: code, attempts: 1, requests: -1})
	}
	for _, code := range []int{408, 500, 502, 503} {
		cs = append(cs, faultCase{name: fmt.Sprint(code), fault: status(code), want: unavailable, status: code, attempts: 3, requests: 3})
	}
	short := status(429)
	short.retryAfter = time.Second
	cs = append(cs, faultCase{name: "429 Retry-After 1", fault: short, want: unavailable, status: 429, attempts: 3, requests: 3, retryAfter: time.Second})
	// A Retry-After the policy allows (MaxDelay 2h) but the caller's
	// context does not: honoured, the publish gives up at once instead of
	// retrying after its own short backoff.
	long := status(429)
	long.retryAfter = time.Hour
	long.Retry.MaxDelay = 2 * time.Hour
	cs = append(cs, faultCase{name: "429 Retry-After past the deadline", fault: long, want: unavailable, status: 429, attempts: 1, requests: 1, retryAfter: time.Hour, deadline: true})
	for _, code := range []int{600, 999} {
		cs = append(cs, faultCase{name: fmt.Sprint(code), fault: status(code), want: rejected, status: code, attempts: 1, requests: 1})
	}
	for _, code := range []int{302, 307, 308} {
		f := status(code)
		f.kind = faultRedirect
		cs = append(cs, faultCase{name: fmt.Sprintf("redirect %d", code), fault: f, want: rejected, status: code, attempts: 1, requests: 1})
	}
	cs = append(cs,
		faultCase{name: "no answer", fault: Fault{kind: faultNoAnswer, Retry: faultRetry, AttemptTimeout: noAnswerTimeout}, want: maybe, attempts: 1, requests: 1},
		faultCase{name: "lost answer", fault: Fault{kind: faultLostAnswer, Retry: faultRetry, AttemptTimeout: answerTimeout}, want: maybe, attempts: 1, requests: 1},
		faultCase{name: "refused", fault: Fault{kind: faultRefused, Retry: faultRetry, AttemptTimeout: answerTimeout}, want: unavailable, attempts: 3, requests: 0},
	)
	return cs
}

func testFaults(t *testing.T, target Target) {
	if target.Faulty == nil {
		t.Skip("target has no faulty server")
	}
	timeout := target.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	for _, c := range faultCases() {
		t.Run(c.name, func(t *testing.T) {
			ft := target.Faulty(t, c.fault)
			if ft.Provider == nil || ft.Requests == nil {
				t.Fatal("realtimetest: Target.Faulty returned no Provider or no Requests")
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := ft.Provider.Publish(ctx, faultMessage("fault-room", "video.asset.ready"))
			checkFault(t, target, c, err, ft.Requests())
			if c.fault.kind == faultRedirect && ft.Redirected != nil {
				if n := ft.Redirected(); n != 0 {
					t.Errorf("the redirect was followed: the other origin received %d requests", n)
				}
			}
		})
	}
}

// faultMessage is a small valid message for room and name.
func faultMessage(room, name string) realtime.Message {
	return realtime.Message{Room: room, Name: name, RequestID: "req-fault", Body: map[string]string{"status": "ready"}}
}

func checkFault(t *testing.T, target Target, c faultCase, err error, requests int) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: Publish returned nil", c.fault)
	}
	msg := err.Error()
	for _, class := range classes {
		want := false
		for _, w := range c.want {
			want = want || w == class
		}
		if got := errors.Is(err, class); got != want {
			t.Errorf("%s: errors.Is(err, %v) = %v, want %v; err: %s", c.fault, class, got, want, msg)
		}
	}
	if got := errors.Is(err, context.DeadlineExceeded); got != c.deadline {
		t.Errorf("%s: errors.Is(err, context.DeadlineExceeded) = %v, want %v; err: %s", c.fault, got, c.deadline, msg)
	}
	if got, want := realtime.IsPermanent(err), errors.Is(err, realtime.ErrRejected); got != want {
		t.Errorf("%s: IsPermanent = %v, want %v", c.fault, got, want)
	}
	var pe *realtime.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: %T is not a *realtime.PublishError: %s", c.fault, err, msg)
	}
	if target.Transport != "" && pe.Transport != target.Transport || pe.Transport == "" {
		t.Errorf("%s: PublishError.Transport = %q, want %q", c.fault, pe.Transport, target.Transport)
	}
	if pe.StatusCode != c.status {
		t.Errorf("%s: PublishError.StatusCode = %d, want %d", c.fault, pe.StatusCode, c.status)
	}
	if pe.Attempts != c.attempts {
		t.Errorf("%s: PublishError.Attempts = %d, want %d", c.fault, pe.Attempts, c.attempts)
	}
	if pe.RetryAfter != c.retryAfter {
		t.Errorf("%s: PublishError.RetryAfter = %v; want %v", c.fault, pe.RetryAfter, c.retryAfter)
	}
	want := c.requests
	if want < 0 {
		want = max(target.UnauthorizedRequests, 1)
	}
	if requests != want {
		t.Errorf("%s: the server received %d requests, want %d", c.fault, requests, want)
	}
	for _, s := range target.Secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("%s: the error contains a secret: %s", c.fault, msg)
		}
	}
	if c.fault.kind == faultRedirect && pe.Detail == "" {
		t.Errorf("%s: PublishError.Detail does not say the redirect was not followed", c.fault)
	}
}
