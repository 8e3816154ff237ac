package inngest

// PublishURL exposes publishURL to the tests of package inngest_test.
func PublishURL(p *Provider, room, name string) (string, error) { return p.publishURL(room, name) }

// DevChannelSecret is the public channel secret New uses against the dev
// server.
const DevChannelSecret = devChannelSecret
