package dir_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/mail/dir"
	"github.com/ticketing/ticketing/services/mail/mailtest"
)

// inbox reads the directory back with List.
func inbox(d *dir.Dir) mailtest.Inbox {
	return func(t *testing.T, addr string) []mailtest.Received {
		t.Helper()
		entries, err := d.List()
		if err != nil {
			t.Fatal(err)
		}
		var out []mailtest.Received
		for _, e := range slices.Backward(entries) { // oldest first
			m := e.Message
			r := mailtest.Received{ID: m.ID, From: m.Sender(), To: m.Recipients(), Subject: m.Subject, Text: m.Text, HTML: m.HTML}
			if slices.Contains(r.To, addr) {
				out = append(out, r)
			}
		}
		return out
	}
}

func TestContract(t *testing.T) {
	mailtest.Run(t, func(t *testing.T) (mail.Mailer, mailtest.Inbox) {
		d, err := dir.New(filepath.Join(t.TempDir(), "mail"))
		if err != nil {
			t.Fatal(err)
		}
		return d, inbox(d)
	})
}

func send(t *testing.T, d *dir.Dir, subject string) {
	t.Helper()
	err := d.Send(context.Background(), mail.Message{From: "a@example.test", To: []string{"b@example.test"}, Subject: subject, Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
}

func TestListAndRead(t *testing.T) {
	path := t.TempDir()
	d, err := dir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"first", "second", "third"} {
		send(t, d, s)
	}
	// Files that are not messages of Send are left out.
	for name, content := range map[string]string{
		".tmp-123.eml": "From: half",
		"notes.txt":    "x",
		"20261207T130000.000000000Z-0000000a.eml": "not a message",
		"../escape.eml": "x",
	} {
		_ = os.WriteFile(filepath.Join(path, name), []byte(content), 0o600)
	}
	entries, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, e := range entries {
		subjects = append(subjects, e.Message.Subject)
	}
	if !slices.Equal(subjects, []string{"third", "second", "first"}) {
		t.Fatalf("List subjects %q, want newest first", subjects)
	}
	e, raw, err := d.Read(entries[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Message.Subject != "third" || e.Size != int64(len(raw)) || !strings.Contains(string(raw), "\r\nSubject: third\r\n") {
		t.Fatalf("Read: %+v\n%s", e, raw)
	}
	onDisk, err := os.ReadFile(filepath.Join(path, entries[0].ID+dir.Ext))
	if err != nil || string(onDisk) != string(raw) {
		t.Fatalf("Read's raw text is not the file's (%v)", err)
	}
	for _, id := range []string{"", "../escape", "20261207T130000.000000000Z-ffffffff", entries[0].ID + "/", "notes"} {
		if _, _, err := d.Read(id); !errs.Is(errs.NotFound, err) {
			t.Errorf("Read(%q) = %v, want errs.NotFound", id, err)
		}
	}
	if _, _, err := d.Read("20261207T130000.000000000Z-0000000a"); !errs.Is(errs.Invalid, err) {
		t.Errorf("Read of a file that is no message = %v, want errs.Invalid", err)
	}
}

// TestNoHalfFiles reads every message while others are written: each one
// listed reads whole, and no temporary file is left behind.
func TestNoHalfFiles(t *testing.T) {
	path := t.TempDir()
	d, err := dir.New(path)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("ü", 32<<10)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for range 10 {
			if err := d.Send(context.Background(), mail.Message{From: "a@example.test", To: []string{"b@example.test"}, Text: big}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	reads := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		des, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			id, ok := strings.CutSuffix(de.Name(), dir.Ext)
			if !ok || strings.HasPrefix(id, ".") {
				continue
			}
			e, _, err := d.Read(id)
			if err != nil {
				t.Fatalf("Read(%s) while writing: %v", id, err)
			}
			if e.Message.Text != big {
				t.Fatalf("Read(%s) returned a text of %d bytes, want %d", id, len(e.Message.Text), len(big))
			}
			reads++
		}
	}
	wg.Wait()
	entries, err := d.List()
	if err != nil || len(entries) != 10 {
		t.Fatalf("List: %d entries, %v; want 10", len(entries), err)
	}
	des, _ := os.ReadDir(path)
	if len(des) != 10 {
		t.Fatalf("%d files in the directory, want the 10 messages only", len(des))
	}
	t.Logf("%d reads while writing", reads)
}

func TestSendSetsDate(t *testing.T) {
	d, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	send(t, d, "dated")
	entries, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if date := entries[0].Message.Date; date.Before(before) || date.After(time.Now()) {
		t.Fatalf("Date %v, want about now", date)
	}
}
