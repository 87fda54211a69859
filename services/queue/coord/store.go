package coord

import (
	"context"
	"regexp"

	"github.com/ticketing/ticketing/services/queue"
)

// Secrets are an event's waiting-room secrets: the ticket key every edge
// gets and the draw seed, revealed only from the on-sale time on.
type Secrets struct {
	TicketKey []byte `json:"ticket_key"`
	Seed      []byte `json:"seed"`
}

// NewSecrets makes fresh random secrets.
func NewSecrets() Secrets { return Secrets{TicketKey: queue.NewTicketKey(), Seed: queue.NewSeed()} }

// PreQueue is what the edges sent of an event's pre-queue.
type PreQueue struct {
	Chunks [][]queue.TicketID
	// Sent: edges that sent any chunk; Done: those that sent their last.
	Sent []string
	Done map[string]bool
}

// Store keeps the waiting room's core state. It holds secrets and must be
// readable by core nodes only. Safe for concurrent use, also by several
// core nodes on one store.
type Store interface {
	// Secrets returns the event's secrets, storing fresh ones the first
	// time (create-once, so every node gets the same).
	Secrets(ctx context.Context, eventID string) (Secrets, error)
	// LoadState returns the controller state and its revision; revision 0
	// and a zero State when none is stored.
	LoadState(ctx context.Context, eventID string) (State, uint64, error)
	// SaveState stores the state if the stored revision is still rev (0:
	// none stored) and returns the new one; otherwise an errs.Conflict
	// error: another controller wrote meanwhile.
	SaveState(ctx context.Context, eventID string, s State, rev uint64) (uint64, error)
	// AddPreQueue stores a chunk of an edge's pre-queue; storing the same
	// chunk twice is harmless.
	AddPreQueue(ctx context.Context, eventID, edge string, tickets []queue.TicketID, last bool) error
	// PreQueue returns what the edges sent.
	PreQueue(ctx context.Context, eventID string) (PreQueue, error)
}

var edgePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidEdge reports whether s may name an edge: 1-64 letters, digits,
// dashes and underscores (it appears in storage keys).
func ValidEdge(s string) bool { return edgePattern.MatchString(s) }
