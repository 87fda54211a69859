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
	// chunk twice is harmless. Once the draw is closed (CloseDraw) it
	// refuses with an errs.Conflict error, on every node: a chunk it
	// accepted is in the record, a chunk it refused is not.
	AddPreQueue(ctx context.Context, eventID, edge string, tickets []queue.TicketID, last bool) error
	// PreQueue returns what the edges sent; with cut > 0 (a DrawCut) only
	// the chunks stored before the cut, so every node reads the same.
	PreQueue(ctx context.Context, eventID string, cut uint64) (PreQueue, error)
	// CloseDraw closes the collection of the event's pre-queues (once:
	// the first call on any node wins) and returns the cut. Closing a
	// closed draw returns its cut.
	CloseDraw(ctx context.Context, eventID string) (cut uint64, err error)
	// DrawCut returns the cut of a closed draw, 0 while it is open.
	DrawCut(ctx context.Context, eventID string) (uint64, error)
	// SaveDraw stores the final draw list built from the chunks before the
	// cut. Every node builds the same list from the same cut, so a second
	// save (another node, racing) is harmless; the first stored is kept.
	SaveDraw(ctx context.Context, eventID string, tickets []queue.TicketID) error
	// DrawPage returns tickets [offset, offset+limit) of the stored draw
	// list and its total; ok is false while none is stored.
	DrawPage(ctx context.Context, eventID string, offset, limit int) (page []queue.TicketID, total int, ok bool, err error)
}

var edgePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidEdge reports whether s may name an edge: 1-64 letters, digits,
// dashes and underscores (it appears in storage keys).
func ValidEdge(s string) bool { return edgePattern.MatchString(s) }
