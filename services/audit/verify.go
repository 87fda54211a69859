package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ProblemKind says what Verify found wrong with a chain.
type ProblemKind string

// The problems Verify reports.
const (
	// Changed: an entry's fields do not hash to its stored hash (its body,
	// attributes, offset or hash were edited), or an entry was replaced by
	// a re-hashed one (the next entry's PrevHash does not match).
	Changed ProblemKind = "changed"
	// Missing: a gap in Seq; entries were removed.
	Missing ProblemKind = "missing"
	// Reordered: entries are stored out of Seq order, or their offsets do
	// not increase.
	Reordered ProblemKind = "reordered"
	// Malformed: a stored entry cannot be decoded, or belongs to another
	// chain.
	Malformed ProblemKind = "malformed"
)

// Problem is the first thing wrong with a chain.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	// Position of the entry in stored order, from 1.
	Position int64 `json:"position"`
	// Seq and Offset as stored in that entry (0 if it is malformed).
	Seq    int64  `json:"seq"`
	Offset int64  `json:"offset"`
	Msg    string `json:"message"`
}

// ChainReport is the result of verifying one chain.
type ChainReport struct {
	Chain Chain `json:"chain"`
	// Entries read.
	Entries int64 `json:"entries"`
	// Head is the last entry that verified: record it elsewhere to detect
	// a later truncation of the chain.
	Head Head `json:"head"`
	// Problem is the first problem found; Verify stops reading the chain
	// there. Nil when the chain verified.
	Problem *Problem `json:"problem,omitempty"`
}

// Report is the result of Verify.
type Report struct {
	Chains []ChainReport `json:"chains"`
}

// OK reports whether every chain verified.
func (r *Report) OK() bool {
	for _, c := range r.Chains {
		if c.Problem != nil {
			return false
		}
	}
	return true
}

// Problems returns the reports of the chains that failed.
func (r *Report) Problems() []ChainReport {
	var out []ChainReport
	for _, c := range r.Chains {
		if c.Problem != nil {
			out = append(out, c)
		}
	}
	return out
}

// String is a text report, one line per chain.
func (r *Report) String() string {
	var b strings.Builder
	if len(r.Chains) == 0 {
		return "audit log is empty\n"
	}
	for _, c := range r.Chains {
		if c.Problem == nil {
			fmt.Fprintf(&b, "ok      %s: %d entries, head seq %d offset %d hash %s\n", c.Chain, c.Entries, c.Head.Seq, c.Head.Offset, c.Head.Hash)
			continue
		}
		fmt.Fprintf(&b, "FAILED  %s: %s at stored position %d: %s\n", c.Chain, c.Problem.Kind, c.Problem.Position, c.Problem.Msg)
	}
	if r.OK() {
		fmt.Fprintf(&b, "all %d chains verified\n", len(r.Chains))
	} else {
		fmt.Fprintf(&b, "%d of %d chains FAILED verification\n", len(r.Problems()), len(r.Chains))
	}
	return b.String()
}

// errStop ends a chain's walk at its first problem.
var errStop = errors.New("stop")

// Verify walks every chain of r and reports, per chain, the first entry
// that was changed, is missing, was moved or cannot be read. An error is
// returned only when the store cannot be read (not for what it holds).
//
// For each entry in stored order it checks, in this order: that it
// belongs to the chain; that its fields hash to its stored hash (else
// Changed); that its Seq is the next one (a smaller one is Reordered; a
// larger one is Reordered when the entry after it has the expected Seq, as
// when two entries were swapped, else Missing); that its PrevHash is the
// previous entry's hash (else Changed: the previous entry was replaced by
// a re-hashed forgery); and that its offset is above the previous one
// (else Reordered). Kafka offsets may have gaps (transaction markers), so
// only Seq must be contiguous.
func Verify(ctx context.Context, r Reader) (Report, error) {
	chains, err := r.Chains(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	rep := Report{Chains: make([]ChainReport, 0, len(chains))}
	for _, c := range chains {
		cr, err := verifyChain(ctx, r, c)
		if err != nil {
			return rep, fmt.Errorf("audit: verify %s: %w", c, err)
		}
		rep.Chains = append(rep.Chains, cr)
	}
	return rep, nil
}

func verifyChain(ctx context.Context, r Reader, c Chain) (ChainReport, error) {
	cr := ChainReport{Chain: c}
	var pos int64
	fail := func(kind ProblemKind, e *Entry, format string, args ...any) error {
		cr.Problem = &Problem{Kind: kind, Position: pos, Seq: e.Seq, Offset: e.Offset, Msg: fmt.Sprintf(format, args...)}
		return errStop
	}
	var gapAt, gapWant int64 // a gap in Seq, checked again below
	err := r.Entries(ctx, c, func(e Entry) error {
		pos++
		cr.Entries++
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Chain() != c {
			return fail(Malformed, &e, "entry seq %d names chain %s", e.Seq, e.Chain())
		}
		if got := e.ComputeHash(); got != e.Hash {
			return fail(Changed, &e, "entry seq %d (offset %d, event %q) does not match its hash: stored %s, its contents hash to %s",
				e.Seq, e.Offset, e.EventID, short(e.Hash), short(got))
		}
		want := cr.Head.Seq + 1
		switch {
		case e.Seq < want:
			return fail(Reordered, &e, "entry seq %d is stored after seq %d", e.Seq, cr.Head.Seq)
		case e.Seq > want:
			gapAt, gapWant = pos, want
			if want == e.Seq-1 {
				return fail(Missing, &e, "entry seq %d is missing (found seq %d after seq %d)", want, e.Seq, cr.Head.Seq)
			}
			return fail(Missing, &e, "entries seq %d to %d are missing (found seq %d after seq %d)", want, e.Seq-1, e.Seq, cr.Head.Seq)
		}
		if e.PrevHash != cr.Head.Hash {
			if cr.Head.Seq == 0 {
				return fail(Changed, &e, "first entry seq %d has previous hash %s, want zero", e.Seq, short(e.PrevHash))
			}
			return fail(Changed, &e, "entry seq %d was replaced: entry seq %d names previous hash %s, the stored one hashes to %s",
				cr.Head.Seq, e.Seq, short(e.PrevHash), short(cr.Head.Hash))
		}
		if cr.Head.Seq > 0 && e.Offset <= cr.Head.Offset {
			return fail(Reordered, &e, "entry seq %d has offset %d, not above offset %d of seq %d", e.Seq, e.Offset, cr.Head.Offset, cr.Head.Seq)
		}
		cr.Head = Head{Seq: e.Seq, Offset: e.Offset, Hash: e.Hash}
		return nil
	})
	var me *MalformedError
	switch {
	case errors.Is(err, errStop):
	case errors.As(err, &me):
		cr.Problem = &Problem{Kind: Malformed, Position: me.Position, Msg: me.Err.Error()}
	case err != nil:
		return cr, err
	}
	if gapAt > 0 {
		// A gap is a move, not a removal, when the missing entry is
		// stored further on: read the chain again to tell.
		var p int64
		err := r.Entries(ctx, c, func(e Entry) error {
			p++
			if p > gapAt && e.Seq == gapWant && e.Chain() == c {
				cr.Problem.Kind = Reordered
				cr.Problem.Msg = fmt.Sprintf("entry seq %d is stored at position %d, before seq %d (at position %d)", cr.Problem.Seq, gapAt, gapWant, p)
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) && !errors.As(err, &me) {
			return cr, err
		}
	}
	return cr, nil
}

func short(h Hash) string { return h.String()[:16] }
