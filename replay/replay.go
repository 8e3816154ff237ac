package replay

import (
	"context"
	"time"

	"github.com/coursebuilder/realtime-go/replay/internal/core"
)

// Log is the history of each room. Every backend (the in-process [Memory],
// package redislog for apps on several instances) passes the same
// conformance suite.
type Log interface {
	// Append adds envelope to room's history under id, assigning the room's
	// next seq (last + 1, starting at 1), atomically across every process
	// sharing the log. envelope is a JSON object that has no "seq" or
	// "epoch" member; the stored envelope is it with `,"seq":N,"epoch":E`
	// inserted before its final '}' (`{"seq":N,"epoch":E}` for `{}`), the
	// bytes realtime.Envelope.Sequenced makes.
	//
	// The same id appended again to the same room while its entry is
	// retained returns that first Entry with Duplicate set and appends
	// nothing: a retried Inngest step publishes under the same id, so
	// Append is safe to retry.
	Append(ctx context.Context, room, id string, envelope []byte) (Entry, error)
	// After returns up to limit entries of room with Seq > after, in seq
	// order, and where the room's history stands.
	After(ctx context.Context, room string, after uint64, limit int) (Page, error)
	// Close releases the log; every later call fails with [ErrClosed]. It
	// is safe to call more than once.
	Close() error
}

// Entry is one message of a room's history.
type Entry struct {
	// ID is the id the message was appended under.
	ID string
	// Seq is the message's position in its room: 1 for the first message
	// of an epoch, one more for each next one.
	Seq uint64
	// Epoch names the room's numbering. It changes when the log lost or
	// dropped the room's history, so that seq restarted at 1: a seq is only
	// comparable with seqs of the same epoch. Never 0.
	Epoch uint64
	// Envelope is the stored envelope, the appended one with its "seq" and
	// "epoch" members. The memory log shares it with every reader: do not
	// modify it.
	Envelope []byte
	// Time is when the log stored the message (the Redis server's clock
	// for redislog); retention by age counts from it.
	Time time.Time
	// Duplicate is set by Append when the id was already in the room: the
	// Entry is the first one and nothing was appended. It does not mean
	// the message was fanned out (the first attempt may have failed after
	// its append, or the Redis client retried a lost reply): a publisher
	// fans out the returned Entry either way.
	Duplicate bool
}

// Page is one answer of [Log.After].
type Page struct {
	// Entries are the entries after the requested seq, in seq order, at
	// most the requested limit.
	Entries []Entry
	// Head is the room's latest seq when read; 0 when the room has no
	// history (never appended to, or forgotten).
	Head uint64
	// Epoch is the room's epoch (see [Entry.Epoch]); 0 when Head is 0. A
	// client whose seqs come from another epoch must treat its position as
	// lost, as with Truncated.
	Epoch uint64
	// Truncated reports that messages after the requested seq were already
	// dropped by retention: the first entry's seq is above after+1, or none
	// is left although Head is above after.
	Truncated bool
}

// Retention bounds each room's history: a message is dropped once the room
// holds MaxMessages newer ones or once it is MaxAge old, whichever comes
// first. A room none of whose messages is left is forgotten: its next
// message starts a new epoch at seq 1. Every process sharing a log must use
// the same Retention.
type Retention struct {
	// MaxMessages is how many messages a room keeps. Zero or negative means
	// 1000.
	MaxMessages int
	// MaxAge is how long a message is kept. Zero or negative means 24h.
	MaxAge time.Duration
}

// Sentinel errors, matched with errors.Is.
var (
	// ErrInvalid matches every invalid argument: an empty room or id, one
	// longer than 256 bytes, a limit that is not positive, and an envelope
	// that is not a JSON object ending in '}' or already has a top-level
	// "seq" or "epoch". The message says which and why; retrying cannot
	// help.
	ErrInvalid = core.ErrInvalid
	// ErrClosed is returned by every call on a closed log.
	ErrClosed = core.ErrClosed
)
