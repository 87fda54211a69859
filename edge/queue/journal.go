package queue

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ticketing/ticketing/services/queue"
)

// The journal of a room: <JournalDir>/<event>.journal, append-only records
//
//	type (1 byte) | payload (fixed size per type) | CRC-32C of type and payload (4 bytes, big-endian)
//
// with the types
//
//	'H' header:   digest (16): SHA-256 of the ticket key, on-sale time and commitment, first 16 bytes
//	'J' join:     ticket (16) | join time, unix ns (8) | 1 if it went to the pre-queue, else 0 (1)
//	'D' draw:     seed (32)
//	'A' admitted: n (4) | admission time, unix ns (8)
//
// A join record is 30 bytes. Reading stops at the first record that is
// short or fails its CRC (a torn tail after a crash); the file is cut back
// to the last whole record before appending.
const (
	recHeader = 'H'
	recJoin   = 'J'
	recDraw   = 'D'
	recAdmit  = 'A'

	journalDigestSize = 16

	// journalFlushEvery is how often buffered records are written to the
	// file (a process crash loses at most this much), journalSyncEvery how
	// often the file is fsync'd (a machine crash loses at most this much).
	journalFlushEvery = 50 * time.Millisecond
	journalSyncEvery  = time.Second
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func payloadSize(typ byte) int {
	switch typ {
	case recHeader:
		return journalDigestSize
	case recJoin:
		return queue.TicketIDSize + 8 + 1
	case recDraw:
		return queue.SeedSize
	case recAdmit:
		return 4 + 8
	}
	return -1
}

// journalRecord is one decoded record (not the header).
type journalRecord struct {
	typ    byte
	ticket queue.TicketID
	at     time.Time
	pre    bool
	seed   []byte
	n      int
}

func appendRecord(b []byte, typ byte, payload []byte) []byte {
	start := len(b)
	b = append(b, typ)
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

func joinPayload(p []byte, t queue.TicketID, at time.Time, pre bool) []byte {
	p = append(p, t[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(at.UnixNano()))
	if pre {
		return append(p, 1)
	}
	return append(p, 0)
}

func admitPayload(p []byte, n int, at time.Time) []byte {
	p = binary.BigEndian.AppendUint32(p, uint32(n))
	return binary.BigEndian.AppendUint64(p, uint64(at.UnixNano()))
}

// journalDigest binds a journal to one sale of an event: a journal written
// under another ticket key, on-sale time or commitment is not replayed.
func journalDigest(key []byte, onSale time.Time, commitment string) []byte {
	h := sha256.New()
	// The format's name from before the package was renamed: journals
	// written then still read.
	h.Write([]byte("ticketing/waitroom/journal/v1\x00"))
	h.Write(key)
	_ = binary.Write(h, binary.BigEndian, onSale.UnixNano())
	h.Write([]byte(commitment))
	return h.Sum(nil)[:journalDigestSize]
}

// errOtherSale: the journal's header is not the expected one.
var errOtherSale = errors.New("the journal is of another sale")

// readJournal reads the records of r, calling f for each after a header
// equal to want, and returns the length of the whole records read (0: no
// header). It stops without error at a torn or corrupt record, and with
// errOtherSale, before any record, at a header other than want.
func readJournal(r io.Reader, want []byte, f func(journalRecord) error) (good int64, err error) {
	var digest []byte
	br := bufio.NewReaderSize(r, 64<<10)
	buf := make([]byte, 1+queue.SeedSize+4)
	for {
		typ, err := br.ReadByte()
		if err != nil {
			return good, nil // EOF
		}
		n := payloadSize(typ)
		if n < 0 {
			return good, nil
		}
		rec := buf[:1+n+4]
		rec[0] = typ
		if _, err := io.ReadFull(br, rec[1:]); err != nil {
			return good, nil // torn tail
		}
		if crc32.Checksum(rec[:1+n], crcTable) != binary.BigEndian.Uint32(rec[1+n:]) {
			return good, nil
		}
		p := rec[1 : 1+n]
		if typ == recHeader {
			if good != 0 {
				return good, nil // a header belongs at the start only
			}
			if string(p) != string(want) {
				return 0, errOtherSale
			}
			digest = append([]byte(nil), p...)
			good += int64(len(rec))
			continue
		}
		if digest == nil {
			return 0, errOtherSale // no header: nothing to trust
		}
		jr := journalRecord{typ: typ}
		switch typ {
		case recJoin:
			copy(jr.ticket[:], p)
			jr.at = time.Unix(0, int64(binary.BigEndian.Uint64(p[16:])))
			jr.pre = p[24] == 1
		case recDraw:
			jr.seed = append([]byte(nil), p...)
		case recAdmit:
			jr.n = int(binary.BigEndian.Uint32(p))
			jr.at = time.Unix(0, int64(binary.BigEndian.Uint64(p[4:])))
		}
		if err := f(jr); err != nil {
			return good, err
		}
		good += int64(len(rec))
	}
}

// journalPath is the journal file of an event. Event ids that are not
// plain file names are hex-encoded.
func journalPath(dir, eventID string) string {
	name := eventID
	plain := len(name) > 0 && len(name) <= 200 && name[0] != '.'
	for i := 0; plain && i < len(name); i++ {
		c := name[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	if !plain {
		name = "x-" + hex.EncodeToString([]byte(eventID))
	}
	return filepath.Join(dir, name+".journal")
}

// journal appends a room's records to its file: appends go to a buffer,
// a goroutine writes the buffer every journalFlushEvery and fsyncs every
// journalSyncEvery. After a write error the journal logs it and stops
// (the queue goes on in memory).
type journal struct {
	path string
	log  *slog.Logger
	f    *os.File

	mu     sync.Mutex
	buf    []byte
	closed bool
	failed bool

	done chan struct{}
	wg   sync.WaitGroup
}

// openJournal opens the event's journal at path, replaying its records
// into f when its header carries digest. A journal of another sale (or
// with no valid header) is set aside as <path>.stale and a new one begun.
func openJournal(path string, digest []byte, log *slog.Logger, f func(journalRecord) error) (*journal, error) {
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: journal: %w", err)
	}
	fail := func(err error) (*journal, error) {
		_ = file.Close()
		return nil, fmt.Errorf("queue: journal %s: %w", path, err)
	}
	replayed := 0
	good, err := readJournal(file, digest, func(r journalRecord) error {
		replayed++
		return f(r)
	})
	if errors.Is(err, errOtherSale) {
		// Another sale of the event: start over, keeping the old file.
		_ = file.Close()
		log.Warn("queue journal of another sale set aside", "path", path)
		if err := os.Rename(path, path+".stale"); err != nil {
			return nil, fmt.Errorf("queue: journal: %w", err)
		}
		return openJournal(path, digest, log, f)
	}
	if err != nil {
		return fail(err)
	}
	if st, err := file.Stat(); err != nil {
		return fail(err)
	} else if st.Size() > good {
		log.Warn("queue journal: dropped a torn or corrupt tail", "path", path, "bytes", st.Size()-good)
	}
	if err := file.Truncate(good); err != nil {
		return fail(err)
	}
	if _, err := file.Seek(good, io.SeekStart); err != nil {
		return fail(err)
	}
	j := &journal{path: path, log: log, f: file, done: make(chan struct{})}
	if good == 0 {
		j.buf = appendRecord(j.buf, recHeader, digest)
		if err := j.flush(true); err != nil {
			return fail(err)
		}
	} else if replayed > 0 {
		log.Info("queue journal replayed", "path", path, "records", replayed)
	}
	j.wg.Add(1)
	go j.loop()
	return j, nil
}

func (j *journal) add(typ byte, payload []byte) {
	j.mu.Lock()
	if !j.closed && !j.failed {
		j.buf = appendRecord(j.buf, typ, payload)
	}
	j.mu.Unlock()
}

func (j *journal) join(t queue.TicketID, at time.Time, pre bool) {
	var p [32]byte
	j.add(recJoin, joinPayload(p[:0], t, at, pre))
}

func (j *journal) draw(seed []byte) { j.add(recDraw, seed) }

func (j *journal) admitted(n int, at time.Time) {
	var p [16]byte
	j.add(recAdmit, admitPayload(p[:0], n, at))
}

// flush writes the buffered records to the file, and fsyncs it if sync.
func (j *journal) flush(sync bool) error {
	j.mu.Lock()
	b := j.buf
	j.buf = nil
	failed := j.failed
	j.mu.Unlock()
	if failed {
		return nil
	}
	var err error
	if len(b) > 0 {
		_, err = j.f.Write(b)
	}
	if err == nil && sync {
		err = j.f.Sync()
	}
	if err != nil {
		j.mu.Lock()
		j.failed = true
		j.buf = nil
		j.mu.Unlock()
		j.log.Error("queue journal: write failed, the queue goes on without it", "path", j.path, "err", err)
	}
	return err
}

func (j *journal) loop() {
	defer j.wg.Done()
	t := time.NewTicker(journalFlushEvery)
	defer t.Stop()
	lastSync := time.Now()
	for {
		select {
		case <-j.done:
			return
		case <-t.C:
			sync := time.Since(lastSync) >= journalSyncEvery
			if sync {
				lastSync = time.Now()
			}
			_ = j.flush(sync)
		}
	}
}

// close writes and fsyncs what is buffered and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true // later records are dropped
	j.mu.Unlock()
	close(j.done)
	j.wg.Wait()
	err := j.flush(true)
	return errors.Join(err, j.f.Close())
}
