package legacyparty_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/coursebuilder/realtime-go/legacyparty"
	"github.com/coursebuilder/realtime-go/realtime"
)

// The PartyKit provider never follows a redirect either, with its own
// client or a user's: a 3xx is a rejection that names the host Location
// points to, and nothing reaches that host.
func TestPublishNeverFollowsARedirect(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer target.Close()
	host := strings.TrimPrefix(target.URL, "http://")

	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, client := range []string{"own client", "user client"} {
			t.Run(strconv.Itoa(status)+"/"+client, func(t *testing.T) {
				var hits atomic.Int32
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					_, _ = io.Copy(io.Discard, r.Body)
					w.Header().Set("Location", target.URL+r.URL.Path+"?leak=query-secret")
					w.WriteHeader(status)
				}))
				defer srv.Close()
				opts := &legacyparty.Options{
					BaseURL: srv.URL,
					Retry:   &realtime.RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
				}
				var user *http.Client
				if client == "user client" {
					user = &http.Client{}
					opts.HTTPClient = user
				}
				p, err := legacyparty.New(opts)
				require.NoError(t, err)
				defer p.Close()

				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err = p.Publish(ctx, realtime.Message{Room: "vid_1", Name: "video.asset.ready", Body: "x"})
				require.Error(t, err)
				assert.ErrorIs(t, err, realtime.ErrRejected)
				var pe *realtime.PublishError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, status, pe.StatusCode)
				assert.Contains(t, err.Error(), host)
				assert.NotContains(t, err.Error(), "query-secret")
				assert.EqualValues(t, 1, hits.Load(), "a rejection is not retried")
				if user != nil {
					assert.Nil(t, user.CheckRedirect, "the user's client was changed")
				}
			})
		}
	}
	assert.Zero(t, reached.Load(), "a redirect was followed")
}
