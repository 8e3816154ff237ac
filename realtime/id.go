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

// newID returns the id of a message to room whose envelope without id is
// env: in a function run, "r_" and a hash of the run id, the room and env,
// the same on every attempt of a step that publishes the same message;
// otherwise a new UUIDv7 (time-ordered, random).
func newID(ctx context.Context, room string, env []byte) string {
	if run, ok := ctx.Value(runIDKey{}).(string); ok {
		h := sha256.New()
		for _, part := range [][]byte{[]byte(run), []byte(room), env} {
			h.Write(part)
			h.Write([]byte{0})
		}
		return "r_" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
	}
	id, err := uuid.NewV7()
	if err != nil { // the system's random source failed
		id = uuid.New()
	}
	return id.String()
}
