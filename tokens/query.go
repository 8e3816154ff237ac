package tokens

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/coursebuilder/realtime-go/flags"
	"github.com/coursebuilder/realtime-go/internal/field"
	"github.com/coursebuilder/realtime-go/internal/transport"
	"github.com/coursebuilder/realtime-go/realtime"
)

// Limits of a token request's query.
const (
	// maxQueryBytes bounds the raw query string of a token request; a
	// longer one is answered 400 without being parsed.
	maxQueryBytes = 2 << 10
	// maxNames bounds the event names one token request may ask for.
	maxNames = 16
)

// query is a parsed token request.
type query struct {
	room  string
	scope flags.Scope
	names []string
}

// queryError is a malformed query. Its message is safe to send back to the
// client: it names the parameter and the rule, never the value.
type queryError struct{ msg string }

func (e *queryError) Error() string { return "tokens: invalid query: " + e.msg }

func badQuery(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf(format, args...)}
}

// parseQuery reads
//
//	room=<room>[&scope=<scope>][&names=<name>[,<name>...]]...
//
// room is required, once, and valid as a realtime room. scope, at most
// once, must be one of flags.Scopes. names may repeat and hold
// comma-separated lists; each name must be valid as a realtime event name
// and belong to the scope. Without names the scope's Names are used;
// without scope, the scope is that of the names, which must all share it.
// Other parameters are ignored.
func parseQuery(raw string) (query, error) {
	if len(raw) > maxQueryBytes {
		return query{}, badQuery("the query is longer than %d bytes", maxQueryBytes)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, badQuery("the query is not a valid URL query")
	}
	var q query
	switch rooms := vals["room"]; len(rooms) {
	case 0:
		return query{}, badQuery("room is required")
	case 1:
		q.room = rooms[0]
	default:
		return query{}, badQuery("room is given more than once")
	}
	if err := transport.Validate("room", q.room, field.RoomBytes); err != nil {
		return query{}, badQuery("%s", reason(err))
	}

	haveScope := false
	switch scopes := vals["scope"]; len(scopes) {
	case 0:
	case 1:
		q.scope = flags.Scope(scopes[0])
		if !slices.Contains(flags.Scopes, q.scope) {
			return query{}, badQuery("scope is not one of %s", scopeList())
		}
		haveScope = true
	default:
		return query{}, badQuery("scope is given more than once")
	}

	for _, v := range vals["names"] {
		for name := range strings.SplitSeq(v, ",") {
			if err := transport.Validate("name", name, field.NameBytes); err != nil {
				return query{}, badQuery("%s", reason(err))
			}
			if slices.Contains(q.names, name) {
				continue
			}
			if len(q.names) == maxNames {
				return query{}, badQuery("more than %d names", maxNames)
			}
			q.names = append(q.names, name)
		}
	}

	switch {
	case len(q.names) == 0 && !haveScope:
		return query{}, badQuery("scope or names is required")
	case len(q.names) == 0:
		q.names = q.scope.Names()
		if len(q.names) == 0 {
			return query{}, badQuery("scope %s has no default names: give names", q.scope)
		}
	case !haveScope:
		q.scope = flags.ScopeOf(q.names[0])
	}
	for _, name := range q.names {
		if flags.ScopeOf(name) != q.scope {
			return query{}, badQuery("a name is not in scope %s", q.scope)
		}
	}
	return q, nil
}

// reason turns a validation error into a message without the value.
func reason(err error) string {
	var ve *realtime.ValidationError
	if errors.As(err, &ve) {
		msg := strings.TrimPrefix(ve.Error(), "realtime: invalid message: ")
		return msg
	}
	return "invalid value"
}

func scopeList() string {
	s := make([]string, len(flags.Scopes))
	for i, sc := range flags.Scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ", ")
}
