// Package filestore keeps the analytics funnels and the consumed offsets in
// one JSON file, the embedded store of `ticketing dev`. Every Apply writes
// the whole file anew (to a temporary file, fsynced, renamed over the old
// one, directory fsynced), so the funnels and the offsets change together
// or not at all, whenever the process dies. The cost of an Apply grows with
// the number of events: fine for development, not for production (use
// services/analytics/postgres). One process at a time may use a file.
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
)

// Config configures the store.
type Config struct {
	// Path of the file; its directory is created if missing. Required.
	Path string
}

// Defaults fills zero fields (none yet).
func (c *Config) Defaults() {}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.Path) == "" {
		return errs.E("analytics.filestore.config", errs.Invalid, "a file path is required")
	}
	return nil
}

type offset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Next      int64  `json:"next"`
}

type file struct {
	Offsets []offset                    `json:"offsets"`
	Funnels map[string]*analytics.State `json:"funnels"`
}

// Store is an analytics.Store in a file.
type Store struct {
	cfg     Config
	mu      sync.Mutex
	offsets map[analytics.Position]int64
	states  map[string]*analytics.State
}

var _ analytics.Store = (*Store)(nil)

// Open reads the file, if there is one.
func Open(c Config) (*Store, error) {
	const op = "analytics.filestore.open"
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o750); err != nil {
		return nil, errs.E(op, err)
	}
	s := &Store{cfg: c, offsets: map[analytics.Position]int64{}, states: map[string]*analytics.State{}}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, errs.E(op, err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, errs.E(op, errs.Invalid, "corrupt analytics file "+c.Path, err)
	}
	for _, o := range f.Offsets {
		s.offsets[analytics.Position{Topic: o.Topic, Partition: o.Partition}] = o.Next
	}
	if f.Funnels != nil {
		s.states = f.Funnels
	}
	return s, nil
}

// Offsets implements analytics.Store.
func (s *Store) Offsets(ctx context.Context, ps []analytics.Position) (map[analytics.Position]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[analytics.Position]int64{}
	for _, p := range ps {
		if n, ok := s.offsets[p]; ok {
			out[p] = n
		}
	}
	return out, nil
}

// Apply implements analytics.Store.
func (s *Store) Apply(ctx context.Context, inputs []analytics.Input) (int, error) {
	const op = "analytics.apply"
	if err := ctx.Err(); err != nil {
		return 0, errs.E(op, errs.Unavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	work := map[string]*analytics.State{}
	for _, id := range analytics.EventIDs(inputs) {
		if st := s.states[id]; st != nil {
			work[id] = st.Clone()
		}
	}
	changed, moved, applied := analytics.Fold(s.offsets, work, inputs)
	if applied == 0 {
		return 0, nil
	}
	states := make(map[string]*analytics.State, len(s.states)+len(changed))
	for id, st := range s.states {
		states[id] = st
	}
	for id, st := range changed {
		states[id] = st
	}
	offsets := make(map[analytics.Position]int64, len(s.offsets)+len(moved))
	for p, n := range s.offsets {
		offsets[p] = n
	}
	for p, n := range moved {
		offsets[p] = n
	}
	if err := s.write(offsets, states); err != nil {
		return 0, errs.E(op, errs.Unavailable, err)
	}
	s.offsets, s.states = offsets, states
	return applied, nil
}

func (s *Store) write(offsets map[analytics.Position]int64, states map[string]*analytics.State) error {
	f := file{Funnels: states}
	for p, n := range offsets {
		f.Offsets = append(f.Offsets, offset{p.Topic, p.Partition, n})
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.cfg.Path), ".analytics-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.cfg.Path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(s.cfg.Path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Funnel implements analytics.Store.
func (s *Store) Funnel(ctx context.Context, eventID string) (analytics.Funnel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[eventID]
	if st == nil {
		return analytics.Funnel{}, errs.E("analytics.funnel", errs.NotFound, "no funnel for this event")
	}
	return st.Funnel(), nil
}
