package inngestrt

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"regexp"
)

// keyPrefix matches the human-readable "signkey-<env>-" head of a signing key,
// as in inngestgo's signature.go.
var keyPrefix = regexp.MustCompile(`^signkey-\w+-`)

// HashSigningKey returns the form of a signing key that is sent as a bearer
// token: the "signkey-<env>-" prefix is kept, the rest is hex-decoded,
// SHA-256 hashed and hex-encoded again (inngestgo's hashedSigningKey). The
// error never contains the key.
func HashSigningKey(key string) (string, error) {
	prefix := keyPrefix.FindString(key)
	body := key[len(prefix):]
	raw, err := hex.DecodeString(body)
	if err != nil || len(raw) == 0 {
		return "", errors.New("inngestrt: signing key is not hex after its signkey-<env>- prefix")
	}
	sum := sha256.Sum256(raw)
	return prefix + hex.EncodeToString(sum[:]), nil
}

// NewSigningKey returns a random signing key, "signkey-test-<64 hex digits>".
func NewSigningKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "signkey-test-" + hex.EncodeToString(b)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
