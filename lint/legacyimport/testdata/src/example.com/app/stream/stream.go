// Package stream imports a Go PartyKit client.
package stream

import partysocket "example.com/partysocket-go" // want `^import \(as partysocket\) of PartyKit-related package "example.com/partysocket-go" in example.com/app/stream is not allowed: realtime notifications go through Inngest Realtime now`

var _ = partysocket.Dial
