// Package redislog is a [replay.Log] in Redis, for an app whose instances
// publish to the same rooms: every instance that shares the Redis (and the
// key Prefix) shares each room's seq and history, so that no seq is handed
// out twice or skipped, whichever instance appends.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true, DialerRetries: 1, MaxRetries: 1})
//	log := redislog.New(client, nil) // 1000 messages, 24 hours per room
//	e, err := log.Append(ctx, room, id, envelope)
//
// Each Append is one round trip: a Lua script (EVALSHA, EVAL the first time
// a server lacks it) that checks the id, increments the room's counter,
// stores the envelope with its seq, trims the room by count and age and
// returns seq, time and epoch; each After is one round trip too. Entry
// times come from the Redis server's clock, so instances whose clocks
// disagree still agree on ages. A room is two keys in one hash slot
// ("<prefix>{<room in base64url>}:m" and ":l"), so the log works on Redis
// Cluster; they expire a second after MaxAge of silence. The log owns every
// key under its Prefix. Options are an
// *Options in which nil, and each zero field, means the default.
//
// # When Redis restarts
//
// With persistence (appendonly yes) a restart loses nothing: a room's
// history, counter and epoch come back. A crash may lose the last second
// or two of appends with appendfsync everysec (Redis's default), none with
// appendfsync always. Without persistence, or when a room's keys are lost
// otherwise (evicted under maxmemory: prefer noeviction), the room's
// counter restarts at 1, but under a new epoch, stored with the counter
// and returned in every Entry and Page: a client that compares epochs
// never takes a new message for one it saw. The one case that can repeat a
// seq under the same epoch is a failover to a replica that missed the
// newest writes (Redis replicates asynchronously and the log does not wait
// for replicas).
//
// # The client
//
// The options above are the ones to use behind a broadcast.Broadcast, which
// gives each append a second and publishes without seq when it fails.
// ContextTimeoutEnabled makes every call end with its context without a
// goroutine per call. DialerRetries: 1 and MaxRetries: 1 keep an outage
// short: go-redis's defaults (5 dial attempts 100 ms apart, for each of 3
// command attempts) made each publish wait its whole second while Redis was
// down, 20 publishes 8.5 s in the harness's Redis-restart test, against
// 0.45 s with these options.
//
// # Errors
//
// Invalid arguments fail as package replay says ([replay.ErrInvalid]).
// Redis unreachable, too slow for the context, loading, read-only or out
// of memory: an error matching realtime.ErrUnavailable (and the context's
// error when it ended); Append is then safe to retry under the same id,
// since an append that did happen is found again as a duplicate. A client
// closed by its owner matches [replay.ErrClosed].
//
// # Concurrency
//
// A Log is safe for concurrent use. Appends to one room from any number of
// instances are serialised by Redis: each script runs alone.
package redislog
