// Package core holds what every backend of package replay shares: argument
// and envelope validation, the seq insertion, the retention defaults and the
// sentinel errors that package replay re-exports.
package core

import (
	"errors"
	"strconv"
	"time"

	"github.com/coursebuilder/realtime-go/internal/field"
)

// Sentinels, re-exported by package replay.
var (
	ErrInvalid = errors.New("replay: invalid argument")
	ErrClosed  = errors.New("replay: log closed")
)

// Limits on the names a log keys by: a room is limited as a message's room
// is (field.RoomBytes); an id may be as long as a request id
// (field.RequestIDBytes), so that a request id can serve as one.
const (
	MaxRoomBytes = field.RoomBytes
	MaxIDBytes   = field.RequestIDBytes
)

// Retention defaults; package replay's doc says why.
const (
	DefaultMaxMessages = 1000
	DefaultMaxAge      = 24 * time.Hour
)

// Retention returns maxMessages and maxAge with the defaults put in for zero
// or negative values.
func Retention(maxMessages int, maxAge time.Duration) (int, time.Duration) {
	if maxMessages <= 0 {
		maxMessages = DefaultMaxMessages
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return maxMessages, maxAge
}

// invalidError says which argument is invalid and why; it matches ErrInvalid.
type invalidError struct{ what, why string }

func (e *invalidError) Error() string { return "replay: invalid " + e.what + ": " + e.why }

func (e *invalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an error matching ErrInvalid: "replay: invalid <what>: <why>".
func Invalid(what, why string) error { return &invalidError{what, why} }

// CheckRoom validates a room name: not empty, at most MaxRoomBytes.
func CheckRoom(room string) error { return checkName("room", room, MaxRoomBytes) }

// CheckAppend validates Append's arguments and reports whether envelope is
// an object without members ({}), which takes its seq without a comma.
func CheckAppend(room, id string, envelope []byte) (empty bool, err error) {
	if err := CheckRoom(room); err != nil {
		return false, err
	}
	if err := checkName("id", id, MaxIDBytes); err != nil {
		return false, err
	}
	return CheckEnvelope(envelope)
}

// CheckAfter validates After's arguments.
func CheckAfter(room string, limit int) error {
	if err := CheckRoom(room); err != nil {
		return err
	}
	if limit <= 0 {
		return Invalid("limit", strconv.Itoa(limit)+" is not positive")
	}
	return nil
}

func checkName(what, s string, limit int) error {
	switch {
	case s == "":
		return Invalid(what, "empty")
	case len(s) > limit:
		return Invalid(what, strconv.Itoa(len(s))+" bytes, limit "+strconv.Itoa(limit))
	}
	return nil
}

// Truncated reports whether messages after `after` were dropped by
// retention, given the room's head and the first seq of the page (0 for an
// empty page).
func Truncated(head, after, first uint64) bool {
	if head <= after {
		return false
	}
	return first == 0 || first > after+1
}
