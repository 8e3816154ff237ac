package redislog

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursebuilder/realtime-go/internal/replaytest"
)

// benchEnvelope is the size of a video notification.
var benchEnvelope = []byte(`{"body":{"videoResourceId":"b5f7c1d2-8a9e-4c1b-9d2f-3e4a5b6c7d8e","status":"ready"},"requestId":"b5f7c1d2-8a9e-4c1b-9d2f-3e4a5b6c7d8e","name":"video.asset.ready"}`)

// BenchmarkAppend is Log.Append to one room in steady state (each append
// trims one message), as the package doc recommends: a client with
// ContextTimeoutEnabled and a context with a deadline. Compare with
// BenchmarkBareRoundTrip: the goal is at most 1.2× its time.
func BenchmarkAppend(b *testing.B) {
	srv := replaytest.StartRedis(b, nil)
	l := New(srv.Client(&redis.Options{ContextTimeoutEnabled: true}), &Options{Prefix: freshPrefix()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	benchAppend(b, l, ctx)
}

// BenchmarkAppendWatched is Append with go-redis's default options and a
// context that can be canceled: each call is watched from a goroutine of
// its own.
func BenchmarkAppendWatched(b *testing.B) {
	srv := replaytest.StartRedis(b, nil)
	l := New(srv.Client(nil), &Options{Prefix: freshPrefix()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchAppend(b, l, ctx)
}

func benchAppend(b *testing.B, l *Log, ctx context.Context) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := l.Append(ctx, "room", strconv.Itoa(i), benchEnvelope); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBareRoundTrip sends what Append sends, the same EVALSHA of the
// same script with the same arguments, through a bare go-redis call: the
// cost of an append on the wire and in Redis, without this package's Go
// code.
func BenchmarkBareRoundTrip(b *testing.B) {
	srv := replaytest.StartRedis(b, nil)
	client := srv.Client(nil)
	l := New(client, &Options{Prefix: freshPrefix()})
	ctx := context.Background()
	if err := appendScript.Load(ctx, client).Err(); err != nil {
		b.Fatal(err)
	}
	sha, keys, prefix := appendScript.Hash(), l.keys("room"), benchEnvelope[:len(benchEnvelope)-1]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := client.EvalSha(ctx, sha, keys, strconv.Itoa(i), prefix, ",", l.maxMessages, l.maxAge, l.ttl).Err(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAfter reads a page of 100 entries from a full room.
func BenchmarkAfter(b *testing.B) {
	srv := replaytest.StartRedis(b, nil)
	l := New(srv.Client(nil), &Options{Prefix: freshPrefix()})
	ctx := context.Background()
	for i := range 1000 {
		if _, err := l.Append(ctx, "room", strconv.Itoa(i), benchEnvelope); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := l.After(ctx, "room", 500, 100)
		if err != nil || len(p.Entries) != 100 {
			b.Fatal(len(p.Entries), err)
		}
	}
}

// BenchmarkAppendVsBare alternates an Append with the bare EVALSHA of
// BenchmarkBareRoundTrip, on one server, and reports each one's mean and
// their ratio: on a shared machine the load then weighs on both alike. The
// goal is ratio ≤ 1.2. "direct" is configured as BenchmarkAppend,
// "watched" as BenchmarkAppendWatched.
func BenchmarkAppendVsBare(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		appendVsBare(b, &redis.Options{ContextTimeoutEnabled: true}, ctx)
	})
	b.Run("watched", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		appendVsBare(b, nil, ctx)
	})
}

func appendVsBare(b *testing.B, opts *redis.Options, ctx context.Context) {
	srv := replaytest.StartRedis(b, nil)
	l := New(srv.Client(opts), &Options{Prefix: freshPrefix()})
	bare := srv.Client(nil)
	if err := appendScript.Load(ctx, bare).Err(); err != nil {
		b.Fatal(err)
	}
	sha, keys, prefix := appendScript.Hash(), l.keys("bare"), benchEnvelope[:len(benchEnvelope)-1]
	var appendTime, bareTime time.Duration
	i := 0
	for b.Loop() {
		id := strconv.Itoa(i)
		start := time.Now()
		if _, err := l.Append(ctx, "room", id, benchEnvelope); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := bare.EvalSha(context.Background(), sha, keys, id, prefix, ",", l.maxMessages, l.maxAge, l.ttl).Err(); err != nil {
			b.Fatal(err)
		}
		appendTime += mid.Sub(start)
		bareTime += time.Since(mid)
		i++
	}
	b.ReportMetric(float64(appendTime.Nanoseconds())/float64(i), "append-ns")
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(i), "bare-ns")
	b.ReportMetric(float64(appendTime)/float64(bareTime), "ratio")
}
