package chunkstream

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Pump calls recv until it returns io.EOF, publishing every delta it
// returns to s, then closes s with [Stream.Close] (the rest of the text,
// then the end marker) and returns its result. recv returns the next delta
// of a streamed completion, possibly empty, or io.EOF once the completion
// is over; with github.com/sashabaranov/go-openai:
//
//	err := chunkstream.Pump(ctx, func() (string, error) {
//		resp, err := stream.Recv() // io.EOF after the last chunk
//		if err != nil || len(resp.Choices) == 0 {
//			return "", err
//		}
//		return resp.Choices[0].Delta.Content, nil
//	}, s)
//
// It never drops a delta: when s holds MaxBuffered bytes that are not
// published yet, Pump waits for room, so a slow provider slows the reading
// of the completion instead. If recv fails, Pump publishes what it received
// with [Stream.CloseIncomplete] (no end marker: the response is not
// complete) and returns recv's error joined with CloseIncomplete's; so it
// does, with an error matching [realtime.ErrInvalidUTF8], for a delta that
// is not valid UTF-8 (none of that delta is published). If ctx ends, Pump
// stops, the stream abandons what is not published (see [Stream.Close]) and
// Pump returns ctx's error with the stream's. recv takes no context: bind
// it to ctx where it is created (an OpenAI stream to the context of its
// request).
func Pump(ctx context.Context, recv func() (string, error), s *Stream) error {
	for {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, s.CloseIncomplete(ctx))
		}
		delta, err := recv()
		if delta != "" {
			if perr := s.publishWait(ctx, delta); perr != nil {
				cerr := s.CloseIncomplete(ctx)
				if _, failed := errors.AsType[*FailedError](perr); failed {
					return cerr // the same failure
				}
				return errors.Join(perr, cerr)
			}
		}
		if errors.Is(err, io.EOF) {
			return s.Close(ctx)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("chunkstream: receive delta: %w", err), s.CloseIncomplete(ctx))
		}
	}
}
