// Package natskv keeps the waiting room's core state (coord.Store) in a
// JetStream key-value bucket: per event the secrets (ticket key and draw
// seed, created once with KV Create so every core node agrees), the
// controller state (updated by compare-and-set on its revision, which
// fences a deposed controller out), the edges' pre-queue chunks and the
// closed draw record.
//
// # The draw record
//
// Chunks are created once (KV Create: a repeated chunk keeps its first
// revision). Closing the draw creates drawcut.<event> once; its revision
// is the cut: the record is the chunks whose revision is below it, so
// every node that reads them builds the same list. A chunk is refused when
// the cut exists before its write, and also when the cut exists after its
// write with a lower revision (the close came first): so a chunk an edge
// was told is stored is in the record, on whichever node it landed. The
// built list is stored in pages (drawpage.<event>.<n>, 16 bytes per
// ticket, PageTickets per page, within the bucket's value size) and then
// its header drawrec.<event> (created once), which says it is complete;
// every node answers from these from then on.
//
// The bucket holds secrets: it must be readable by core users only, never
// by edge leaf users (conf/nats/core.conf gives them no access to it).
//
// Keys:
//
//	secrets.<event>                  coord.Secrets (JSON)
//	state.<event>                    coord.State (JSON)
//	pq.<event>.<edge>.<digest>       a chunk: 16 bytes per ticket
//	pqdone.<event>.<edge>            the edge sent its last chunk
//	drawcut.<event>                  the draw is closed; its revision is the cut
//	drawpage.<event>.<n>             page n of the draw list: 16 bytes per ticket
//	drawrec.<event>                  the draw list is stored: drawHeader (JSON)
package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/queue"
	"github.com/ticketing/ticketing/services/queue/coord"
)

// Bucket is the default bucket name.
const Bucket = "queue-state"

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func KeyValueConfig(replicas int) jetstream.KeyValueConfig {
	if replicas == 0 {
		replicas = 1
	}
	return jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "waiting-room secrets, controller state, pre-queues (private: core only)",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
		MaxValueSize: 1 << 20,
	}
}

// Store is a coord.Store on a key-value bucket. NC, when set, reads secrets
// another node has just created from the bucket's leader (kvget).
type Store struct {
	KV jetstream.KeyValue
	NC *nats.Conn
}

var _ coord.Store = (*Store)(nil)

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "queue store unavailable", err)
}

// Secrets implements coord.Store.
func (s *Store) Secrets(ctx context.Context, eventID string) (coord.Secrets, error) {
	const op = "queue.natskv.secrets"
	key := "secrets." + eventID
	for attempt := 0; attempt < 3; attempt++ {
		v, err := kvget.Get(ctx, s.NC, s.KV, key)
		if err == nil {
			var sec coord.Secrets
			if err := json.Unmarshal(v, &sec); err != nil {
				return coord.Secrets{}, errs.E(op, errs.Other, fmt.Errorf("stored secrets: %w", err))
			}
			return sec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return coord.Secrets{}, unavailable(op, err)
		}
		sec := coord.NewSecrets()
		b, _ := json.Marshal(sec)
		_, err = s.KV.Create(ctx, key, b)
		if err == nil {
			return sec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return coord.Secrets{}, unavailable(op, err)
		}
		// Another node created them first: read theirs.
	}
	return coord.Secrets{}, errs.E(op, errs.Unavailable, "secrets contended; try again")
}

// LoadState implements coord.Store.
func (s *Store) LoadState(ctx context.Context, eventID string) (coord.State, uint64, error) {
	const op = "queue.natskv.load_state"
	e, err := s.KV.Get(ctx, "state."+eventID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return coord.State{}, 0, nil
	case err != nil:
		return coord.State{}, 0, unavailable(op, err)
	}
	var st coord.State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return coord.State{}, 0, errs.E(op, errs.Other, fmt.Errorf("stored state: %w", err))
	}
	return st, e.Revision(), nil
}

// SaveState implements coord.Store.
func (s *Store) SaveState(ctx context.Context, eventID string, st coord.State, rev uint64) (uint64, error) {
	const op = "queue.natskv.save_state"
	b, err := json.Marshal(st)
	if err != nil {
		return 0, errs.E(op, errs.Invalid, err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.KV.Create(ctx, "state."+eventID, b)
	} else {
		nrev, err = s.KV.Update(ctx, "state."+eventID, b, rev)
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return 0, errs.E(op, errs.Conflict, "controller state changed meanwhile", err)
	case err != nil:
		return 0, unavailable(op, err)
	}
	return nrev, nil
}

// AddPreQueue implements coord.Store. A chunk's key is the digest of its
// tickets and it is created once, so a repeated chunk keeps its first
// revision (and so its place before or after the cut).
func (s *Store) AddPreQueue(ctx context.Context, eventID, edge string, tickets []queue.TicketID, last bool) error {
	const op = "queue.natskv.add_prequeue"
	if !coord.ValidEdge(edge) {
		return errs.Errorf(op, errs.Invalid, "edge name %q: use 1-64 letters, digits, dashes and underscores", edge)
	}
	var key string
	var b []byte
	if len(tickets) > 0 {
		b = encode(tickets)
		sum := sha256.Sum256(b)
		key = "pq." + eventID + "." + edge + "." + hex.EncodeToString(sum[:12])
	}
	if cut, err := s.DrawCut(ctx, eventID); err != nil {
		return err
	} else if cut > 0 {
		// Closed: only a repeat of a chunk in the record is accepted (an
		// edge retrying a chunk whose answer it lost).
		if key != "" {
			e, err := s.KV.Get(ctx, key)
			if err == nil && e.Revision() < cut {
				return nil
			}
			if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return unavailable(op, err)
			}
		}
		return closed(op)
	}
	var rev uint64 // the chunk's revision; 0 for markers only
	if key != "" {
		r, err := s.KV.Create(ctx, key, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			var e jetstream.KeyValueEntry
			if e, err = s.KV.Get(ctx, key); err == nil {
				r = e.Revision()
			}
		}
		if err != nil {
			return unavailable(op, err)
		}
		rev = r
	}
	if last {
		if _, err := s.KV.Put(ctx, "pqdone."+eventID+"."+edge, nil); err != nil {
			return unavailable(op, err)
		}
	} else if len(tickets) == 0 {
		// An empty chunk that is not the last still says the edge sends.
		if _, err := s.KV.Put(ctx, "pq."+eventID+"."+edge+".empty", nil); err != nil {
			return unavailable(op, err)
		}
	}
	// The draw may have closed meanwhile: the chunk counts only if it was
	// stored before the cut.
	cut, err := s.DrawCut(ctx, eventID)
	if err != nil {
		return err
	}
	if cut > 0 && (rev == 0 || rev > cut) {
		return closed(op) // (a chunk stored after the cut is never read)
	}
	return nil
}

func closed(op string) error {
	return errs.E(op, errs.Conflict, "the draw record of this event is closed")
}

func encode(tickets []queue.TicketID) []byte {
	b := make([]byte, 0, len(tickets)*queue.TicketIDSize)
	for _, t := range tickets {
		b = append(b, t[:]...)
	}
	return b
}

func decode(v []byte) []queue.TicketID {
	out := make([]queue.TicketID, len(v)/queue.TicketIDSize)
	for i := range out {
		copy(out[i][:], v[i*queue.TicketIDSize:])
	}
	return out
}

// PreQueue implements coord.Store.
func (s *Store) PreQueue(ctx context.Context, eventID string, cut uint64) (coord.PreQueue, error) {
	const op = "queue.natskv.prequeue"
	out := coord.PreQueue{Done: map[string]bool{}}
	sent := map[string]bool{}
	keys, err := s.listKeys(ctx, "pq."+eventID+".>", "pqdone."+eventID+".*")
	if err != nil {
		return out, unavailable(op, err)
	}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		switch {
		case parts[0] == "pqdone" && len(parts) == 3:
			out.Done[parts[2]] = true
			sent[parts[2]] = true
		case parts[0] == "pq" && len(parts) == 4:
			sent[parts[2]] = true
			if parts[3] == "empty" {
				continue
			}
			e, err := s.KV.Get(ctx, k)
			if err != nil {
				return out, unavailable(op, err)
			}
			if cut > 0 && e.Revision() >= cut {
				continue // after the close: not in the record (and refused)
			}
			out.Chunks = append(out.Chunks, decode(e.Value()))
		}
	}
	for e := range sent {
		out.Sent = append(out.Sent, e)
	}
	sort.Strings(out.Sent)
	return out, nil
}

// CloseDraw implements coord.Store.
func (s *Store) CloseDraw(ctx context.Context, eventID string) (uint64, error) {
	const op = "queue.natskv.close_draw"
	b, _ := json.Marshal(struct {
		At time.Time `json:"at"`
	}{time.Now().UTC()})
	rev, err := s.KV.Create(ctx, "drawcut."+eventID, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return s.DrawCut(ctx, eventID)
	}
	if err != nil {
		return 0, unavailable(op, err)
	}
	return rev, nil
}

// DrawCut implements coord.Store.
func (s *Store) DrawCut(ctx context.Context, eventID string) (uint64, error) {
	e, err := s.KV.Get(ctx, "drawcut."+eventID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, unavailable("queue.natskv.draw_cut", err)
	}
	return e.Revision(), nil
}

// PageTickets is how many tickets one stored page of a draw list holds
// (512 KiB, within the bucket's 1 MiB value size).
const PageTickets = 32_768

// drawHeader says a draw list is stored, and how.
type drawHeader struct {
	Total       int    `json:"total"`
	PageTickets int    `json:"page_tickets"`
	SHA256      string `json:"sha256"` // of the whole list's bytes, for audits
}

// SaveDraw implements coord.Store.
func (s *Store) SaveDraw(ctx context.Context, eventID string, tickets []queue.TicketID) error {
	const op = "queue.natskv.save_draw"
	if _, err := s.KV.Get(ctx, "drawrec."+eventID); err == nil {
		return nil // stored already
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable(op, err)
	}
	all := encode(tickets)
	for n, off := 0, 0; off < len(tickets); n, off = n+1, off+PageTickets {
		end := min(off+PageTickets, len(tickets))
		page := all[off*queue.TicketIDSize : end*queue.TicketIDSize]
		if _, err := s.KV.Put(ctx, pageKey(eventID, n), page); err != nil {
			return unavailable(op, err)
		}
	}
	sum := sha256.Sum256(all)
	b, _ := json.Marshal(drawHeader{Total: len(tickets), PageTickets: PageTickets, SHA256: hex.EncodeToString(sum[:])})
	if _, err := s.KV.Create(ctx, "drawrec."+eventID, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return unavailable(op, err)
	}
	return nil
}

func pageKey(eventID string, n int) string { return "drawpage." + eventID + "." + strconv.Itoa(n) }

// DrawPage implements coord.Store. It reads at most the pages the range
// covers.
func (s *Store) DrawPage(ctx context.Context, eventID string, offset, limit int) ([]queue.TicketID, int, bool, error) {
	const op = "queue.natskv.draw_page"
	e, err := s.KV.Get(ctx, "drawrec."+eventID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, false, nil
	case err != nil:
		return nil, 0, false, unavailable(op, err)
	}
	var h drawHeader
	if err := json.Unmarshal(e.Value(), &h); err != nil || h.PageTickets < 1 || h.Total < 0 {
		return nil, 0, false, errs.E(op, errs.Other, fmt.Errorf("stored draw header %q: %v", e.Value(), err))
	}
	offset = max(offset, 0)
	end := min(offset+max(limit, 0), h.Total)
	if offset >= end {
		return []queue.TicketID{}, h.Total, true, nil
	}
	out := make([]queue.TicketID, 0, end-offset)
	for n := offset / h.PageTickets; n*h.PageTickets < end; n++ {
		pe, err := s.KV.Get(ctx, pageKey(eventID, n))
		if err != nil {
			return nil, 0, false, unavailable(op, err)
		}
		page := decode(pe.Value())
		base := n * h.PageTickets
		lo, hi := max(offset-base, 0), min(end-base, h.PageTickets)
		if hi > len(page) {
			return nil, 0, false, errs.Errorf(op, errs.Other, "stored draw page %d is short", n)
		}
		out = append(out, page[lo:hi]...)
	}
	return out, h.Total, true, nil
}

func (s *Store) listKeys(ctx context.Context, filters ...string) ([]string, error) {
	l, err := s.KV.ListKeysFiltered(ctx, filters...)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}
