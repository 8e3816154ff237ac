package inngestrt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"unicode/utf8"
)

// The constants of xxHash64 (XXH64), the hash the Inngest realtime server
// applies, unseeded, to a channel name to route its messages: a
// subscription and a publish meet on the key
// "<env id>:<base36 xxh64(channel)>:<topic>" (streamingtypes.Topic.String),
// so two channels with the same hash share every topic's subscribers.
var (
	prime64x1 uint64 = 11400714785074694791
	prime64x2 uint64 = 14029467366897019727
)

// Modular inverses mod 2^64 of the two odd primes, for undoing a round.
var (
	invPrime64x1 = inverse64(prime64x1)
	invPrime64x2 = inverse64(prime64x2)
)

// inverse64 returns the inverse of an odd x modulo 2^64 (Newton's method).
func inverse64(x uint64) uint64 {
	y := x // correct to 3 bits for an odd x
	for range 5 {
		y *= 2 - x*y
	}
	return y
}

func xxhRound(acc, input uint64) uint64 {
	return bits.RotateLeft64(acc+input*prime64x2, 31) * prime64x1
}

// ErrRoomTooShort is returned by [CollidingRoom] for a room shorter than
// [MinCollidingRoomBytes].
var ErrRoomTooShort = errors.New("inngestrt: a room needs at least 64 bytes for CollidingRoom")

// ErrNoPrintableCollision is matched by the error of [CollidingRoom] when
// no valid colliding room was found: its bounded search failed (it has not
// happened in practice: each lane needs about 3,000 tries of the 1,000,000
// allowed), or room cannot be cut after its first 64 bytes.
var ErrNoPrintableCollision = errors.New("inngestrt: no printable colliding room found")

// MinCollidingRoomBytes is the shortest room [CollidingRoom] handles: XXH64
// folds its input in 32-byte stripes, and the construction needs two.
const MinCollidingRoomBytes = 64

// CollidingRoom returns a room other than room, of the same length and
// printable ASCII (0x21–0x7e) in its first 64 bytes and identical to room
// after them, whose XXH64 hash is room's. Used as a channel, it routes to
// the same subscribers on the Inngest realtime server: this is the attack
// that keyed channels (inngest.Options.ChannelSecret) defeat.
//
// XXH64 keeps four independent 64-bit lanes; each 8-byte word x of a
// 32-byte stripe updates its lane as v = rotl(v + x·P2, 31)·P1, which is
// invertible in x. So for each lane the search picks a printable word for
// the first stripe, solves the second-stripe word that brings the lane back
// to room's state after two stripes, and keeps it if it is printable too
// (about one try in 3,000). Equal lanes after two stripes, equal length and
// equal remaining bytes give equal hashes. The search is deterministic and
// takes milliseconds.
//
// It fails with ErrRoomTooShort for a room shorter than
// MinCollidingRoomBytes, and with an error matching ErrNoPrintableCollision
// when byte 64 of room is inside a multi-byte character (the first 64 bytes
// are replaced, so the rest would not be valid UTF-8).
func CollidingRoom(room string) (string, error) {
	if len(room) < MinCollidingRoomBytes {
		return "", ErrRoomTooShort
	}
	in := []byte(room)
	if len(in) > MinCollidingRoomBytes && !utf8.RuneStart(in[MinCollidingRoomBytes]) {
		return "", fmt.Errorf("%w: byte 64 of the room is inside a character", ErrNoPrintableCollision)
	}
	out := []byte(room)
	// The lanes' initial values for seed 0.
	init := [4]uint64{prime64x1 + prime64x2, prime64x2, 0, -prime64x1}
	rng := rand.New(rand.NewPCG(0x636f6c6c, 0x6964650a)) // fixed: reproducible
	for lane := range 4 {
		w1 := binary.LittleEndian.Uint64(in[lane*8:])
		w2 := binary.LittleEndian.Uint64(in[32+lane*8:])
		target := xxhRound(xxhRound(init[lane], w1), w2)
		// Undo the second round: the lane's value before it must be
		// s = rotr(target·P1⁻¹, 31) − x·P2, so x = (that − s)·P2⁻¹.
		pre := bits.RotateLeft64(target*invPrime64x1, -31)
		found := false
		for range 1_000_000 {
			var c [8]byte
			for i := range c {
				c[i] = byte(0x21 + rng.IntN(0x7f-0x21))
			}
			x1 := binary.LittleEndian.Uint64(c[:])
			if x1 == w1 {
				continue
			}
			x2 := (pre - xxhRound(init[lane], x1)) * invPrime64x2
			if !printableWord(x2) {
				continue
			}
			binary.LittleEndian.PutUint64(out[lane*8:], x1)
			binary.LittleEndian.PutUint64(out[32+lane*8:], x2)
			found = true
			break
		}
		if !found {
			return "", ErrNoPrintableCollision
		}
	}
	return string(out), nil
}

func printableWord(x uint64) bool {
	for range 8 {
		if b := byte(x); b < 0x21 || b > 0x7e {
			return false
		}
		x >>= 8
	}
	return true
}
