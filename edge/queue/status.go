package queue

import (
	"strconv"
	"time"

	"github.com/ticketing/ticketing/services/queue"
)

// Status is what a waiting user is told: the WebSocket's pushed message
// and the body of the JSON join and status endpoints.
type Status struct {
	Type    string `json:"type"` // always "status"
	EventID string `json:"event_id"`
	// Ticket is the user's queue ticket (32 hex digits): the place-holder
	// the published draw lists, so a user can check their own place, and
	// the subject of their admission token.
	Ticket string `json:"ticket"`
	// State: pre_queue, queued, admitted or sold_out.
	State string `json:"state"`
	// Position in this edge's line, 1 for the next one admitted; 0 when
	// not known (pre-queue before the draw) or not waiting.
	Position int `json:"position"`
	// Ahead: people ahead in this edge's line (Position-1, or 0).
	Ahead int `json:"ahead"`
	// EstimatedWaitSeconds: Position over this edge's recent admission
	// rate; absent when there is no estimate yet.
	EstimatedWaitSeconds *int64 `json:"estimated_wait_seconds,omitempty"`
	// LikelySoldOut: the seats left are unlikely to last to this place.
	LikelySoldOut bool      `json:"likely_sold_out"`
	OnSaleAt      time.Time `json:"on_sale_at"`
	// Token is the admission token (state admitted): send it as the
	// Admission-Token header of the hold request.
	Token          string     `json:"token,omitempty"`
	TokenExpiresAt *time.Time `json:"token_expires_at,omitempty"`
}

// view is what the room knows from the core's last decision, read by
// every status without a lock.
type view struct {
	rate      float64       // this edge's admissions per second (RateEstimator)
	reachable int           // last local position likely to get a seat
	known     bool          // reachable is from a decision that listed this edge
	spare     int           // the last decision could have admitted this many more
	next      time.Duration // how soon a newcomer is in a decision: a report and a tick
}

// status builds a Status from the queue's status of a ticket. tok is the
// ticket's token when admitted ("" when it could not be had).
func (r *Room) status(st queue.Status, v *view, est func(int) (time.Duration, bool), tok token) Status {
	s := Status{Type: "status", EventID: r.id, Ticket: st.Ticket.String(), State: st.State.String(), Position: st.Position, OnSaleAt: r.onSale}
	if st.Position > 0 {
		s.Ahead = st.Ahead
		if w, ok := est(st.Position); ok {
			secs := int64((w + time.Second - 1) / time.Second)
			s.EstimatedWaitSeconds = &secs
		}
		s.LikelySoldOut = v.known && st.Position > v.reachable
	}
	if st.State == queue.SoldOut {
		s.LikelySoldOut = true
	}
	if st.State == queue.Admitted && tok.value != "" {
		s.Token = tok.value
		exp := tok.expires.UTC()
		s.TokenExpiresAt = &exp
	}
	return s
}

// appendJSON appends s as JSON, exactly as encoding/json writes it (a test
// checks), without reflection or allocation: the broadcaster encodes one
// status per connection per round.
func (s *Status) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, s.Type)
	b = append(b, `,"event_id":`...)
	b = appendString(b, s.EventID)
	b = append(b, `,"ticket":`...)
	b = appendString(b, s.Ticket)
	b = append(b, `,"state":`...)
	b = appendString(b, s.State)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, int64(s.Position), 10)
	b = append(b, `,"ahead":`...)
	b = strconv.AppendInt(b, int64(s.Ahead), 10)
	if s.EstimatedWaitSeconds != nil {
		b = append(b, `,"estimated_wait_seconds":`...)
		b = strconv.AppendInt(b, *s.EstimatedWaitSeconds, 10)
	}
	b = append(b, `,"likely_sold_out":`...)
	b = strconv.AppendBool(b, s.LikelySoldOut)
	b = append(b, `,"on_sale_at":"`...)
	b = s.OnSaleAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if s.Token != "" {
		b = append(b, `,"token":`...)
		b = appendString(b, s.Token)
	}
	if s.TokenExpiresAt != nil {
		b = append(b, `,"token_expires_at":"`...)
		b = s.TokenExpiresAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendString appends a JSON string. The strings here are ids, state
// names and base64url tokens; anything outside printable ASCII or needing
// an escape is written as \u00XX, as encoding/json does for < 0x20.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c >= 0x80:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
