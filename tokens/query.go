package tokens

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
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
	// catchUp is set for a catch-up request (after given): the messages
	// after seq after, at most limit of them.
	catchUp bool
	after   uint64
	limit   int
	// v2 is set by v=2: the answer says where to listen.
	v2 bool
}

// Bounds of a catch-up request.
const (
	defaultCatchUpLimit = 100
	maxCatchUpLimit     = 500
)

// queryError is a malformed query. Its message is safe to send back to the
// client: it names the parameter and the rule, never the value.
type queryError struct{ msg string }

func (e *queryError) Error() string { return "tokens: invalid query: " + e.msg }

func badQuery(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf(format, args...)}
}

// parseQuery reads
//
//	room=<room>[&scope=<scope>][&names=<name>[,<name>...]]...[&after=<seq>[&limit=<n>]]
//
// room is required, once, and valid as a realtime room. scope, at most
// once, must be one of flags.Scopes. names may repeat and hold
// comma-separated lists; each name must be valid as a realtime event name
// and belong to the scope. Without names the scope's Names are used;
// without scope, the scope is that of the names, which must all share it.
// after, at most once, makes it a catch-up request: a decimal seq, and limit
// (1 to 500, default 100) bounds the page. v=2 asks where to listen. Other
// parameters are ignored.
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
	return parseCatchUp(q, vals)
}

// parseCatchUp reads after and limit, and v.
func parseCatchUp(q query, vals url.Values) (query, error) {
	switch vs := vals["v"]; {
	case len(vs) > 1:
		return query{}, badQuery("v is given more than once")
	case len(vs) == 1 && vs[0] != "2":
		return query{}, badQuery("v is not 2")
	case len(vs) == 1:
		q.v2 = true
	}
	switch afters := vals["after"]; len(afters) {
	case 0:
		if _, ok := vals["limit"]; ok {
			return query{}, badQuery("limit is given without after")
		}
		return q, nil
	case 1:
		after, err := strconv.ParseUint(afters[0], 10, 64)
		if err != nil {
			return query{}, badQuery("after is not a seq (a decimal number)")
		}
		q.catchUp, q.after, q.limit = true, after, defaultCatchUpLimit
	default:
		return query{}, badQuery("after is given more than once")
	}
	switch limits := vals["limit"]; len(limits) {
	case 0:
	case 1:
		n, err := strconv.Atoi(limits[0])
		if err != nil || n < 1 || n > maxCatchUpLimit {
			return query{}, badQuery("limit is not a number from 1 to %d", maxCatchUpLimit)
		}
		q.limit = n
	default:
		return query{}, badQuery("limit is given more than once")
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
