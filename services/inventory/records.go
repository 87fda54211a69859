package inventory

import (
	"hash/maphash"
	"unsafe"
)

// A partition of a big on-sale keeps millions of holds and idempotency
// records for a day. It keeps them in a form the garbage collector does
// not have to look at: one record per hold or refusal in fixed-size chunks
// of pointer-free structs, their text (ids, holder, fingerprint, order,
// seat indexes) in an arena of byte chunks, indexed by maps, queues and a
// heap of integers. Holding them as linked objects (a decision, a hold,
// their strings and slices, map entries pointing at them, twice with the
// snapshot shadow) made the mark phase of a collection take 200-350 ms of a
// core at load, the main cause of the hold path's tail latency.

// recKind tells what a record is.
type recKind uint8

const (
	recFree    recKind = iota
	recHold            // a hold (live, ended, or kept only for its idempotency key)
	recRefusal         // a refused hold, kept for its idempotency key
)

// The text fields of a record, in the order they are stored. A sold
// hold's order id is stored apart (rec.ord): confirming a hold adds text
// and rewrites none, so the arena's garbage comes only from records
// forgotten after the retention.
const (
	fID     = iota // hold: the hold id; refusal: the reason
	fHolder        // hold: the holder; refusal: the message
	fFP            // the request's fingerprint
	nFields

	fReason = fID
	fMsg    = fHolder
)

// rec is one hold or refusal. It holds no pointer: its text is in the
// records' arena.
type rec struct {
	txt     textRef         // the text fields, then (holds) seat indexes, 4 bytes each, little-endian
	n       [nFields]uint32 // lengths of the text fields
	ord     textRef         // a sold hold's order id
	at      int64           // when the hold was placed (the refusal made)
	expires int64
	endedAt int64
	gen     uint64 // the batch generation that recorded its idempotency key
	key     IdemKey
	qty     int32 // tickets: seats, or the GA quantity
	zone    int32 // GA zone index; -1 for seats
	heapIdx int32 // index in the expiry heap; -1 when not in it
	nextID  int32 // the next record (index+1) whose id has the same hash; 0: none
	kind    recKind
	status  Status
	byID    bool // reachable through the hold id index
	byKey   bool // reachable through its idempotency key
}

func (r *rec) textLen() int {
	n := 0
	for _, l := range r.n {
		n += int(l)
	}
	return n
}

func (r *rec) seatCount() int { return (int(r.txt.n) - r.textLen()) / 4 }

// setText stores a new record's text fields and seat indexes.
func (rs *records) setText(i int32, f [nFields]string, seats []int32) {
	r := rs.at(i)
	n := 4 * len(seats)
	for _, s := range f {
		n += len(s)
	}
	ref, b := rs.text.put(n, i)
	b = b[:0]
	for i, s := range f {
		r.n[i] = uint32(len(s))
		b = append(b, s...)
	}
	for _, si := range seats {
		b = append(b, byte(si), byte(si>>8), byte(si>>16), byte(si>>24))
	}
	r.txt = ref
	rs.settle()
}

// setOrder stores the order a hold was sold for.
func (rs *records) setOrder(i int32, order string) {
	r := rs.at(i)
	ref, b := rs.text.put(len(order), i)
	copy(b, order)
	old := r.ord
	r.ord = ref
	rs.freeText(old)
}

func (rs *records) order(r *rec) string { return rs.text.get(r.ord) }

// field is one text field of a record: a view of the arena, no copy.
func (rs *records) field(r *rec, f int) string {
	off := 0
	for _, l := range r.n[:f] {
		off += int(l)
	}
	return rs.text.get(r.txt)[off : off+int(r.n[f])]
}

func (rs *records) seat(r *rec, i int) int32 {
	s := rs.text.get(r.txt)[r.textLen()+4*i:]
	return int32(uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24)
}

// Records come in chunks of recChunk (16 KiB): a core owns many
// partitions, most of them small, and each has a shadow.
const (
	recShift = 7
	recChunk = 1 << recShift
)

// records is the partition's store of records: chunks that never move (no
// copy of millions of records when it grows), a free list, and an index by
// hold id (a hash of the id; records with the same hash are chained).
type records struct {
	chunks [][]rec
	n      int32 // records handed out, free ones included
	free   []int32
	ids    map[uint64]int32 // hash of a hold id → record index+1
	hashOf func(string) uint64
	text   arena
	// evacuated counts the sparse chunks whose text was moved.
	evacuated int
}

func newRecords() records {
	seed := maphash.MakeSeed()
	return records{ids: map[uint64]int32{}, hashOf: func(s string) uint64 { return maphash.String(seed, s) }, text: newArena()}
}

func (rs *records) at(i int32) *rec { return &rs.chunks[i>>recShift][i&(recChunk-1)] }

func (rs *records) alloc() int32 {
	if n := len(rs.free); n > 0 {
		i := rs.free[n-1]
		rs.free = rs.free[:n-1]
		return i
	}
	if int(rs.n) == len(rs.chunks)*recChunk {
		rs.chunks = append(rs.chunks, make([]rec, recChunk))
	}
	rs.n++
	return rs.n - 1
}

// release frees a record that neither index reaches any more.
func (rs *records) release(i int32) {
	r := rs.at(i)
	t, ord := r.txt, r.ord
	*r = rec{}
	rs.free = append(rs.free, i)
	rs.text.free(ord)
	rs.freeText(t)
}

// freeText gives text back to the arena. A chunk left less than a quarter
// full (records that stay for good, sold holds, pin chunks that are
// otherwise given back) has its live text moved to the current chunk and
// is dropped: a copy of at most a quarter of a chunk for every three
// quarters given back, and the arena holds at most about four times its
// live text. Views of the old text stay valid.
func (rs *records) freeText(t textRef) {
	rs.text.free(t)
	if t.n > 0 {
		rs.evacuateIfSparse(t.chunk)
	}
	rs.settle()
}

// settle evacuates the chunks that stopped being filled while sparse.
func (rs *records) settle() {
	for len(rs.text.retired) > 0 {
		c := rs.text.retired[0]
		rs.text.retired = rs.text.retired[1:]
		rs.evacuateIfSparse(c)
	}
}

func (rs *records) evacuateIfSparse(c uint32) {
	a := &rs.text
	if c == a.cur || a.chunks[c] == nil || 4*a.live[c] >= cap(a.chunks[c]) {
		return
	}
	owners := a.owners[c]
	a.owners[c] = nil
	move := func(i int32, t *textRef) {
		if t.n == 0 || t.chunk != c {
			return
		}
		ref, b := a.put(int(t.n), i)
		copy(b, a.get(*t))
		old := *t
		*t = ref
		a.free(old)
	}
	for _, i := range owners {
		// An owner may have been released, or reused with text elsewhere.
		if r := rs.at(i); r.kind != recFree {
			move(i, &r.txt)
			move(i, &r.ord)
		}
	}
	rs.evacuated++
}

// each calls f for every record in use, in index order.
func (rs *records) each(f func(int32, *rec)) {
	for i := int32(0); i < rs.n; i++ {
		if r := rs.at(i); r.kind != recFree {
			f(i, r)
		}
	}
}

func (rs *records) hash(id string) uint64 { return rs.hashOf(id) }

// byID finds the hold with an id.
func (rs *records) byID(id string) (int32, bool) {
	return rs.chain(rs.ids[rs.hash(id)], id)
}

// chain finds the hold with an id among the records chained from head.
func (rs *records) chain(head int32, id string) (int32, bool) {
	for v := head; v != 0; v = rs.at(v - 1).nextID {
		if rs.field(rs.at(v-1), fID) == id {
			return v - 1, true
		}
	}
	return -1, false
}

// index makes a hold findable by its id, unless another hold has that id
// (then it reports false and changes nothing).
func (rs *records) index(i int32) bool {
	r := rs.at(i)
	id := rs.field(r, fID)
	h := rs.hash(id)
	head := rs.ids[h]
	if _, dup := rs.chain(head, id); dup {
		return false
	}
	r.nextID = head
	rs.ids[h] = i + 1
	r.byID = true
	return true
}

// unindex removes a hold from the id index.
func (rs *records) unindex(i int32) {
	r := rs.at(i)
	h := rs.hash(rs.field(r, fID))
	if v := rs.ids[h]; v == i+1 {
		if r.nextID == 0 {
			delete(rs.ids, h)
		} else {
			rs.ids[h] = r.nextID
		}
	} else {
		prev := rs.at(v - 1)
		for prev.nextID != i+1 {
			prev = rs.at(prev.nextID - 1)
		}
		prev.nextID = r.nextID
	}
	r.nextID, r.byID = 0, false
}

// expiryHeap is a min-heap of live holds (record indexes) by expiry time;
// each record knows its place in it.
type expiryHeap struct {
	rs *records
	h  []int32
}

func (e *expiryHeap) len() int   { return len(e.h) }
func (e *expiryHeap) top() int32 { return e.h[0] }
func (e *expiryHeap) less(a, b int) bool {
	return e.rs.at(e.h[a]).expires < e.rs.at(e.h[b]).expires
}

func (e *expiryHeap) swap(a, b int) {
	e.h[a], e.h[b] = e.h[b], e.h[a]
	e.rs.at(e.h[a]).heapIdx = int32(a)
	e.rs.at(e.h[b]).heapIdx = int32(b)
}

func (e *expiryHeap) push(i int32) {
	e.rs.at(i).heapIdx = int32(len(e.h))
	e.h = append(e.h, i)
	e.up(len(e.h) - 1)
}

// remove takes the record at heap position j out of the heap.
func (e *expiryHeap) remove(j int) {
	n := len(e.h) - 1
	if n != j {
		e.swap(j, n)
		if !e.down(j, n) {
			e.up(j)
		}
	}
	e.rs.at(e.h[n]).heapIdx = -1
	e.h = e.h[:n]
}

func (e *expiryHeap) up(j int) {
	for {
		i := (j - 1) / 2 // parent
		if i == j || !e.less(j, i) {
			break
		}
		e.swap(i, j)
		j = i
	}
}

func (e *expiryHeap) down(i0, n int) bool {
	i := i0
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1
		if j2 := j1 + 1; j2 < n && e.less(j2, j1) {
			j = j2
		}
		if !e.less(j, i) {
			break
		}
		e.swap(i, j)
		i = j
	}
	return i > i0
}

// textRef is where a record's text is in the arena.
type textRef struct {
	chunk, off, n uint32
}

// Arena chunks grow from minChunk to arenaChunk as the live text does.
const (
	minChunk   = 4 << 10
	arenaChunk = 64 << 10
)

// arena keeps the text of records in chunks of bytes, which the collector
// does not scan. Text is appended and never overwritten, so a view of it
// (get) stays valid for as long as someone holds it, whatever happens to
// the arena; a chunk all of whose text is given back is dropped.
type arena struct {
	chunks  [][]byte
	live    []int     // bytes in use per chunk
	owners  [][]int32 // per chunk, the records that put text in it (some may have moved on)
	slots   []uint32  // dropped chunks' slots, for reuse
	cur     uint32    // the chunk being filled
	retired []uint32  // chunks that stopped being filled, to check for sparseness
	held    int       // bytes of the chunks not dropped
	livesz  int
}

func newArena() arena { return arena{cur: ^uint32(0)} }

// put reserves n bytes for record owner and returns where they are and
// the bytes to fill.
func (a *arena) put(n int, owner int32) (textRef, []byte) {
	if n == 0 {
		return textRef{}, nil
	}
	if a.cur == ^uint32(0) || len(a.chunks[a.cur])+n > cap(a.chunks[a.cur]) {
		if prev := a.cur; prev != ^uint32(0) {
			if a.live[prev] == 0 {
				a.drop(prev)
			} else {
				a.retired = append(a.retired, prev)
			}
		}
		c := make([]byte, 0, max(min(max(a.livesz/8, minChunk), arenaChunk), n))
		if k := len(a.slots); k > 0 {
			a.cur = a.slots[k-1]
			a.slots = a.slots[:k-1]
			a.chunks[a.cur] = c
		} else {
			a.cur = uint32(len(a.chunks))
			a.chunks = append(a.chunks, c)
			a.live = append(a.live, 0)
			a.owners = append(a.owners, nil)
		}
		a.held += cap(c)
	}
	c := a.chunks[a.cur]
	off := len(c)
	a.chunks[a.cur] = c[:off+n]
	a.owners[a.cur] = append(a.owners[a.cur], owner)
	a.live[a.cur] += n
	a.livesz += n
	return textRef{a.cur, uint32(off), uint32(n)}, a.chunks[a.cur][off : off+n : off+n]
}

// get is a view of text: no copy.
func (a *arena) get(t textRef) string {
	if t.n == 0 {
		return ""
	}
	return unsafe.String(&a.chunks[t.chunk][t.off], int(t.n))
}

func (a *arena) free(t textRef) {
	if t.n == 0 {
		return
	}
	a.live[t.chunk] -= int(t.n)
	a.livesz -= int(t.n)
	if a.live[t.chunk] == 0 && t.chunk != a.cur {
		a.drop(t.chunk)
	}
}

func (a *arena) drop(c uint32) {
	a.held -= cap(a.chunks[c])
	a.chunks[c] = nil
	a.owners[c] = nil
	a.slots = append(a.slots, c)
}
