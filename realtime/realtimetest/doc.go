// Package realtimetest helps test code that publishes through a
// [realtime.Provider], in the spirit of net/http/httptest.
//
//   - [Recorder] is an in-memory Provider that validates and encodes like the
//     real ones and keeps every envelope, with [Recorder.WaitFor] to wait
//     for messages published by other goroutines.
//   - [Faulty] is a Provider that follows a script of outcomes (succeed,
//     fail, hang, delay, panic) for testing failure handling.
//   - [Run] is the conformance suite every Provider in this module passes:
//     envelope bytes, validation, size guard, cancellation and concurrent
//     use, and, with Target.Faulty, the failure paths (4xx, 401/403, 5xx,
//     429 with Retry-After, redirects, statuses past 599, no answer, lost
//     answer, refused connection), each checked for its documented error
//     class, its [realtime.PublishError] fields and the number of requests
//     sent. Run it for your own Provider too.
//   - [FaultServer] is a loopback HTTP server (or, with [NewFaultProxy], a
//     proxy in front of a real one) that plays a [Fault] on every request
//     and counts them, for an HTTP transport's Target.Faulty;
//     [EmulateFault] plays one in memory for a [Faulty].
//
// Everything here is safe for concurrent use.
package realtimetest
