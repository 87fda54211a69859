package psp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// The journal is one append-only file of frames, each
//
//	length uint32 LE | crc32c(payload) uint32 LE | payload (a JSON record)
//
// A writer goroutine takes every frame queued since its last write, writes
// them with one write(2) and makes them durable with one fsync(2) (group
// commit): the more requests wait, the more each fsync carries. A frame
// that does not check (a torn write at the end) ends the journal; opening
// cuts it off.

// journalName is the journal's file name in the data directory.
const journalName = "journal"

// maxFrame bounds a frame's payload.
const maxFrame = 16 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errJournalClosed is what appends get once the journal is closed.
var errJournalClosed = errors.New("psp: journal closed")

type journal struct {
	f *os.File

	mu      sync.Mutex
	queue   []queued
	closed  bool
	err     error // sticky: the first write or sync failure
	wake    chan struct{}
	stopped chan struct{}

	syncs, frames atomic.Uint64
	onSync        func(frames int) // metrics; may be nil
}

type queued struct {
	frame []byte
	done  chan error // nil: nobody waits
}

// openJournal opens (creating) the journal in dir, calls replay with each
// record's payload in order, cuts off a torn tail, and starts the writer.
// A replay error stops the open.
func openJournal(dir string, replay func(payload []byte) error) (j *journal, torn int64, err error) {
	path := filepath.Join(dir, journalName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	good, size, err := readFrames(f, replay)
	if err != nil {
		return nil, 0, err
	}
	if good < size {
		if err := f.Truncate(good); err != nil {
			return nil, 0, fmt.Errorf("psp journal: cut the torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, err
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return nil, 0, err
	}
	// The file's name must survive a crash as well as its contents.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return nil, 0, err
		}
	}
	j = &journal{f: f, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go j.write()
	return j, size - good, nil
}

// readFrames calls replay on every frame that checks and returns the
// offset after the last one and the file's size.
func readFrames(f *os.File, replay func([]byte) error) (good, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [8]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return good, size, nil // the end, or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if n == 0 || n > maxFrame || good+8+int64(n) > size {
			return good, size, nil
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return good, size, nil
		}
		if crc32.Checksum(buf, crcTable) != sum {
			return good, size, nil
		}
		if err := replay(buf); err != nil {
			return good, size, fmt.Errorf("psp journal: record at offset %d: %w", good, err)
		}
		good += 8 + int64(n)
	}
}

func frame(payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

// append queues payload and returns once it is durable, or with the
// error that kept it from being so.
func (j *journal) append(payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("psp journal: a record of %d bytes", len(payload))
	}
	done := make(chan error, 1)
	if err := j.enqueue(queued{frame: frame(payload), done: done}); err != nil {
		return err
	}
	return <-done
}

// appendLater queues payload without waiting for it: a record whose loss
// in a crash is harmless (a webhook delivered is delivered again).
func (j *journal) appendLater(payload []byte) {
	if len(payload) <= maxFrame {
		_ = j.enqueue(queued{frame: frame(payload)})
	}
}

func (j *journal) enqueue(q queued) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return errJournalClosed
	}
	if j.err != nil {
		return j.err
	}
	j.queue = append(j.queue, q)
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// write is the writer goroutine: it writes until the queue is empty each
// time it is woken, and returns once close has closed wake.
func (j *journal) write() {
	defer close(j.stopped)
	var spare []queued
	var buf []byte
	for {
		_, open := <-j.wake
		for {
			j.mu.Lock()
			batch := j.queue
			j.queue = spare[:0] // the queue owns spare's array now
			j.mu.Unlock()
			spare = batch // and the writer batch's, once written
			if len(batch) == 0 {
				break
			}
			buf = buf[:0]
			for _, q := range batch {
				buf = append(buf, q.frame...)
			}
			_, err := j.f.Write(buf)
			if err == nil {
				err = j.f.Sync()
			}
			if err != nil {
				err = fmt.Errorf("psp journal: %w", err)
				j.mu.Lock()
				if j.err == nil {
					j.err = err
				}
				j.mu.Unlock()
			}
			j.syncs.Add(1)
			j.frames.Add(uint64(len(batch)))
			if j.onSync != nil {
				j.onSync(len(batch))
			}
			for i, q := range batch {
				if q.done != nil {
					q.done <- err
				}
				batch[i] = queued{}
			}
			if cap(buf) > 8<<20 {
				buf = nil
			}
		}
		if !open {
			return
		}
	}
}

// close writes what is queued, stops the writer and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.wake)
	j.mu.Unlock()
	<-j.stopped
	j.mu.Lock()
	err := j.err
	j.mu.Unlock()
	return errors.Join(err, j.f.Close())
}
