// Package legacyparty stands in for the deprecated PartyKit provider.
package legacyparty

// Provider stands in for legacyparty.Provider.
type Provider struct{}

// New stands in for legacyparty.New.
func New() *Provider { return &Provider{} }
