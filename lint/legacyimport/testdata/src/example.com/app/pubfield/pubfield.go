// Package pubfield publishes through a *legacyparty.Provider held in
// struct fields.
package pubfield

import (
	"context"

	"github.com/coursebuilder/realtime-go/legacyparty" // want `^import of deprecated PartyKit package`
	"github.com/coursebuilder/realtime-go/realtime"
)

// Notifier holds the legacy provider.
type Notifier struct {
	party *legacyparty.Provider
}

// Job carries its context and message.
type Job struct {
	Ctx context.Context
	Msg realtime.Message
}

// Ready publishes a message built in place.
func (n *Notifier) Ready(ctx context.Context, id string) error {
	return n.party.Publish(ctx, realtime.Message{ // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
		Room: id,
		Name: "video.ready",
	})
}

// Flush publishes a job's message in the job's context.
func (n *Notifier) Flush(j *Job) error {
	return (n.party).Publish(j.Ctx, j.Msg) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}

// Legacy embeds the provider, whose Publish it promotes.
type Legacy struct{ *legacyparty.Provider }

// Hello publishes through the promoted method.
func (l Legacy) Hello(ctx context.Context, msg realtime.Message) {
	_ = l.Publish(ctx, msg) // want `^publish through the deprecated \*legacyparty.Provider goes to PartyKit only`
}
