// Package realtimetest helps test code that publishes through a
// [realtime.Provider], in the spirit of net/http/httptest.
//
//   - [Recorder] is an in-memory Provider that validates and encodes like the
//     real ones and keeps every envelope, with [Recorder.WaitFor] to wait
//     for messages published by other goroutines.
//   - [Faulty] is a Provider that follows a script of outcomes (succeed,
//     fail, hang, delay, panic) for testing failure handling.
//   - [Run] is the conformance suite every Provider in this module passes:
//     envelope bytes, validation, size guard, cancellation and concurrent use.
//     Run it for your own Provider too.
//
// Everything here is safe for concurrent use.
package realtimetest
