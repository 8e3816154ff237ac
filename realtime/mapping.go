package realtime

// Mapping turns a PartyKit room into an Inngest Realtime channel and an event
// name into a topic. The zero value is the default: the channel is the room
// and the topic is the name, so a browser that watched room "abc" subscribes
// to channel "abc" and the topics it cares about, such as "video.asset.ready".
//
// Override it to namespace channels, for example per app:
//
//	realtime.Mapping{Channel: func(room string) string { return "astro-party:" + room }}
//
// The same Mapping must be used where messages are published and where
// subscription tokens are minted.
type Mapping struct {
	// Channel maps a room to a channel. Nil means the room itself.
	Channel func(room string) string
	// Topic maps an event name to a topic. Nil means the name itself.
	Topic func(name string) string
}

// ChannelFor returns the channel for room, validated like a room.
func (m Mapping) ChannelFor(room string) (string, error) {
	ch := room
	if m.Channel != nil {
		ch = m.Channel(room)
	}
	if err := ValidateField("channel", ch, MaxRoomBytes); err != nil {
		return "", err
	}
	return ch, nil
}

// TopicFor returns the topic for an event name, validated like a name.
func (m Mapping) TopicFor(name string) (string, error) {
	t := name
	if m.Topic != nil {
		t = m.Topic(name)
	}
	if err := ValidateField("topic", t, MaxNameBytes); err != nil {
		return "", err
	}
	return t, nil
}
