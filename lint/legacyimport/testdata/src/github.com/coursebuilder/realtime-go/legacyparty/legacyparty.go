// Package legacyparty stands in for the deprecated PartyKit provider.
package legacyparty

import (
	"context"

	"github.com/coursebuilder/realtime-go/realtime"
)

// Provider stands in for legacyparty.Provider.
type Provider struct{}

// New stands in for legacyparty.New.
func New() *Provider { return &Provider{} }

// Publish stands in for (*legacyparty.Provider).Publish.
func (p *Provider) Publish(ctx context.Context, msg realtime.Message) error { return nil }

// PublishReply stands in for a method that is not Publish.
func (p *Provider) PublishReply(ctx context.Context, msg realtime.Message) (string, error) {
	return "", nil
}
