package e2e_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coursebuilder/realtime-go/broadcast"
	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
	"github.com/coursebuilder/realtime-go/realtime/inngest"
	"github.com/coursebuilder/realtime-go/replay"
)

// TestPartyKitLimit600KiB: a 600 KiB message, over Inngest's 512 KiB but
// far under PartyKit's own limit, went through the TypeScript provider. In
// legacy and shadow modes the real PartyKit subscriber still receives it
// intact and Publish succeeds (the shadow's Inngest leg refuses it and
// delivers nothing); in primary and realtime modes, where Inngest counts,
// Publish returns the size error. (In primary mode the PartyKit leg may
// deliver it too; that is broadcast's policy, not checked here.)
func TestPartyKitLimit600KiB(t *testing.T) {
	party := sharedParty(t)
	irt, key := sharedInngest(t)
	for _, c := range []struct {
		mode    flags.Mode
		toParty bool
	}{
		{flags.Legacy, true},
		{flags.Shadow, true},
		{flags.Primary, false},
		{flags.Realtime, false},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			logs.attach(t)
			b := newBroadcast(t,
				newParty(t, legacyparty.Options{BaseURL: party.URL()}),
				newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}),
				broadcast.Options{Resolver: flags.Fixed(c.mode), ShadowTimeout: wait})
			r := room("limit-" + c.mode.String())
			partySub := mustSubscribeParty(t, party, r)
			inngestSub := mustSubscribeInngest(t, irt, r, topic)

			msg := readyMsg(r)
			msg.Body = strings.Repeat("x", 600<<10)
			err := b.Publish(ctxT(t), msg)
			if c.toParty {
				if err != nil {
					t.Fatalf("Publish in %s mode: %v", c.mode, err)
				}
				expectDelivered(t, "partykit subscriber", partySub, partySpelling(sent(t, b, msg)))
			} else {
				var tl *realtime.TooLargeError
				if !errors.Is(err, realtime.ErrPayloadTooLarge) || !errors.As(err, &tl) {
					t.Fatalf("Publish in %s mode = %v, want a *realtime.TooLargeError", c.mode, err)
				}
				if tl.Limit != realtime.MaxEnvelopeBytes {
					t.Errorf("TooLargeError = %+v, want Inngest's limit %d", tl, realtime.MaxEnvelopeBytes)
				}
			}
			// Inngest never delivers it; PartyKit nothing more.
			quietSubs := map[string]subscriber{"inngest subscriber": inngestSub}
			if c.mode != flags.Primary {
				quietSubs["partykit subscriber"] = partySub
			}
			expectQuiet(t, quietSubs)
		})
	}
}

// TestPartyKitLimitJustOver: one byte over the PartyKit provider's limit is
// refused with a *realtime.TooLargeError before anything is sent, in every
// mode, with the real servers behind Broadcast. The limit is lowered to
// 1 MiB here (Options.MaxEnvelopeBytes): at the real one (512 MiB, measured
// with partykit dev) a shadow publish encodes two 512 MiB envelopes at once,
// and under -race that took 14 GB and was killed when another suite ran
// beside it. legacyparty's TestPublishRefusesOneByteOverPartyKitsLimit
// checks the real constant.
func TestPartyKitLimitJustOver(t *testing.T) {
	const limit = 1 << 20
	party := sharedParty(t)
	irt, key := sharedInngest(t)
	for _, mode := range []flags.Mode{flags.Legacy, flags.Shadow, flags.Primary, flags.Realtime} {
		t.Run(mode.String(), func(t *testing.T) {
			logs.attach(t)
			tr := &countingTransport{base: &http.Transport{}}
			t.Cleanup(tr.base.(*http.Transport).CloseIdleConnections)
			log := replay.NewMemory(nil)
			t.Cleanup(func() { _ = log.Close() })
			b := newBroadcast(t,
				newParty(t, legacyparty.Options{BaseURL: party.URL(), HTTPClient: &http.Client{Transport: tr}, MaxEnvelopeBytes: limit}),
				newInngest(t, inngest.Options{BaseURL: irt.URL(), SigningKey: key}),
				broadcast.Options{Resolver: flags.Fixed(mode), ShadowTimeout: wait, Log: log})
			r := room("overlimit-" + mode.String())
			partySub := mustSubscribeParty(t, party, r)

			// The room's first entry, straight into the log: the message
			// goes out as seq 2 of its epoch, so its size as sent is known.
			first, err := log.Append(ctxT(t), r, "first", []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			msg := readyMsg(r)
			msg.Body = ""
			empty, err := encodeAny(msg)
			if err != nil {
				t.Fatal(err)
			}
			numbered := len(empty) + len(fmt.Sprintf(`,"seq":%d,"epoch":%d`, first.Seq+1, first.Epoch))
			msg.Body = strings.Repeat("x", limit-numbered+1)
			err = b.Publish(ctxT(t), msg)
			var tl *realtime.TooLargeError
			if !errors.Is(err, realtime.ErrPayloadTooLarge) || !errors.As(err, &tl) {
				t.Fatalf("Publish in %s mode = %v, want a *realtime.TooLargeError", mode, err)
			}
			if tl.Size != limit+1 {
				t.Errorf("TooLargeError = %+v, want size %d: one byte over the limit as sent", tl, limit+1)
			}
			closeBroadcast(t, b)
			if n := tr.n.Load(); n != 0 {
				t.Fatalf("%d requests reached PartyKit", n)
			}
			expectQuiet(t, map[string]subscriber{"partykit subscriber": partySub})
		})
	}
}
