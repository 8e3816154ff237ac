// Package field checks the identifiers of a message (a room, a name, a
// request id) and the channels and topics a transport maps them to, with
// one set of rules, so that every transport refuses the same input.
//
// It imports nothing of this module: package realtime re-exports its
// sentinels and wraps its answers in a *realtime.ValidationError.
package field

import (
	"errors"
	"unicode"
	"unicode/utf8"
)

// The reasons a field is refused; package realtime exports the same values.
var (
	ErrEmpty            = errors.New("realtime: empty")
	ErrTooLong          = errors.New("realtime: too long")
	ErrControlCharacter = errors.New("realtime: control character")
	ErrInvalidUTF8      = errors.New("realtime: invalid UTF-8")
)

// Check returns nil when v is a usable identifier of at most limit bytes,
// and otherwise the reason it is not: empty, too long, not valid UTF-8, or
// holding a control or invisible format character (Unicode Cc and Cf).
func Check(v string, limit int) error {
	switch {
	case v == "":
		return ErrEmpty
	case len(v) > limit:
		return ErrTooLong
	case !utf8.ValidString(v):
		return ErrInvalidUTF8
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ErrControlCharacter
		}
	}
	return nil
}

// Limits of the fields of a message, in bytes, and of the channels and
// topics a transport maps them to.
const (
	RoomBytes      = 256 // a room, and a channel
	NameBytes      = 128 // an event name, and a topic
	RequestIDBytes = 256 // a request id
)

// IDBytes bounds a message id.
const IDBytes = 128

// SequenceBytes is the most a replay log adds to an envelope: the members
// seq and epoch at their largest.
const SequenceBytes = len(`,"seq":18446744073709551615,"epoch":18446744073709551615`)
