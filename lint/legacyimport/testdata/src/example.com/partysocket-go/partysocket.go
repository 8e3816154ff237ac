// Package partysocket stands in for a Go PartyKit client.
package partysocket

// Dial stands in for a websocket dial.
func Dial(string) error { return nil }
