// Package events builds messages, so that a file can publish one without
// importing package realtime.
package events

import "github.com/coursebuilder/realtime-go/realtime"

// Ready returns the message that says a video is ready.
func Ready(id string) realtime.Message { return realtime.Message{Room: id, Name: "video.ready"} }
