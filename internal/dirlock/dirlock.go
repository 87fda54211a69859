//go:build unix

// Package dirlock keeps a data directory to one process at a time. A
// process takes the lock before it starts anything that writes there (a
// JetStream store, an embedded broker, an audit log), so a second process
// given the same directory stops at once with an error naming the
// holder, instead of starting a second store over the first one's files
// and failing later on its ports.
//
// The lock is an exclusive flock(2) on the file LOCK in the directory,
// which holds the holder's pid for people to read. The kernel releases it
// when the process ends however it ends (kill -9 included), so a stale
// LOCK file never keeps a restart out.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Name is the lock file's name in the directory.
const Name = "LOCK"

// ErrLocked is what Acquire's error wraps when another process (or another
// Acquire in this one) holds the directory.
var ErrLocked = errors.New("dirlock: directory in use")

// Lock is a held directory lock.
type Lock struct {
	f *os.File
}

// Acquire creates dir when missing and locks it, without waiting: when
// another holder has it, the error wraps ErrLocked and names the holder's
// pid as its LOCK file says.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dirlock: %w", err)
	}
	path := filepath.Join(dir, Name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dirlock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s; stop that process or give this one another directory", ErrLocked, dir, holder(path))
		}
		return nil, fmt.Errorf("dirlock: lock %s: %w", path, err)
	}
	// Ours now: say who holds it.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the directory up. The LOCK file stays; it locks nothing
// by itself. Release on a nil Lock does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// holder is the pid the LOCK file at path names, for the error message.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return "process " + pid
	}
	return "another process"
}
