package chunkstream

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// DeltaSource yields the text deltas of a streamed completion, such as an
// OpenAI-compatible chat completion stream: with github.com/sashabaranov/go-openai,
//
//	src := chunkstream.DeltaFunc(func() (string, error) {
//		resp, err := stream.Recv() // io.EOF after the last chunk
//		if err != nil || len(resp.Choices) == 0 {
//			return "", err
//		}
//		return resp.Choices[0].Delta.Content, nil
//	})
type DeltaSource interface {
	// Recv returns the next delta, possibly empty, or io.EOF once the
	// completion is over.
	Recv() (string, error)
}

// DeltaFunc adapts a function to [DeltaSource].
type DeltaFunc func() (string, error)

// Recv calls f.
func (f DeltaFunc) Recv() (string, error) { return f() }

// Pump reads src until io.EOF, publishing every delta to s, then closes s
// with [Stream.Close] (the rest of the text, then the end marker) and
// returns its result.
//
// It never drops a delta: when s holds MaxBuffered bytes that are not
// published yet, Pump waits for room, so a slow provider slows the reading
// of src instead. If src fails, Pump publishes what it received with
// [Stream.CloseIncomplete] (no end marker: the response is not complete)
// and returns src's error joined with CloseIncomplete's; so it does, with
// an error matching [ErrInvalidUTF8], for a delta that is not valid UTF-8
// (none of that delta is published). If ctx ends, Pump
// stops, the stream abandons what is not published (see [Stream.Close]) and
// Pump returns ctx's error with the stream's.
// Recv does not take a context: bind src to ctx where it is created (an
// OpenAI stream to the context of its request).
func Pump(ctx context.Context, src DeltaSource, s *Stream) error {
	for {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, s.CloseIncomplete(ctx))
		}
		delta, err := src.Recv()
		if delta != "" {
			if perr := s.publishWait(ctx, delta); perr != nil {
				cerr := s.CloseIncomplete(ctx)
				if errors.Is(perr, ErrFailed) {
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
