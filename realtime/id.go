package realtime

import (
	"context"
	"crypto/sha256"
	"encoding/base64"

	"github.com/google/uuid"
)

type runIDKey struct{}

// withRunID returns ctx carrying the id of the Inngest function run it
// executes, for the ids of the messages it publishes.
func withRunID(ctx context.Context, runID string) context.Context {
	if runID == "" {
		return ctx
	}
	return context.WithValue(ctx, runIDKey{}, runID)
}

// runID returns the id of the function run ctx executes, if any.
func runID(ctx context.Context) (string, bool) {
	run, ok := ctx.Value(runIDKey{}).(string)
	return run, ok
}

// runMessageID is the id of a message to room, published in run, whose
// envelope without id is env: "r_" and a hash of the three, the same on
// every attempt of a step that publishes the same message.
func runMessageID(run, room string, env []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(run), []byte(room), env} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return "r_" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// randomID is the id of a message published outside a function run: a new
// UUIDv7 (time-ordered, random).
func randomID() string {
	id, err := uuid.NewV7()
	if err != nil { // the system's random source failed
		id = uuid.New()
	}
	return id.String()
}
