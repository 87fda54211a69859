package dirlock_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/dirlock"
)

func TestOneHolderAtATime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // made by Acquire
	l, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file, so a second Acquire in this process
	// is refused as another process's would be.
	_, err = dirlock.Acquire(dir)
	if !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("second Acquire: %v, want ErrLocked", err)
	}
	if pid := strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), "process "+pid) {
		t.Errorf("error %q does not name the holder, pid %s", err, pid)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	// Released: the next one gets it, though the LOCK file is still there.
	l2, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
	if err := (*dirlock.Lock)(nil).Release(); err != nil {
		t.Errorf("Release of nil: %v", err)
	}
}

func TestUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dirlock.Acquire(file); err == nil || errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("Acquire of a file: %v, want an error other than ErrLocked", err)
	}
}
