// Package load holds the bounded load test of the library against the real
// servers of the harness: many concurrent publishers through
// broadcast.Broadcast in shadow mode, a subscriber on each transport, and
// the checks that nothing is lost or duplicated, that goroutines and memory
// return to where they started, and that a failing realtime side leaves the
// PartyKit stream complete. It sends traffic to loopback only and stops by
// itself; -load.publishers and -load.messages make it longer.
package load
