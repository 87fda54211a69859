package catalog

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ticketing/ticketing/internal/errs"
)

// Dataset is a set of venues and events, as in conf/demo/demo.json.
type Dataset struct {
	Venues []Venue `json:"venues"`
	Events []Event `json:"events"`
}

// ParseDataset decodes a dataset.
func ParseDataset(b []byte) (Dataset, error) {
	var d Dataset
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("catalog: dataset: %w", err)
	}
	return d, nil
}

// Load creates every venue and event of d that does not exist yet, so that
// loading twice changes nothing. It reports how many it created.
func (s *Service) Load(ctx context.Context, d Dataset) (int, error) {
	n := 0
	for _, v := range d.Venues {
		err := s.CreateVenue(ctx, v)
		if errs.Is(errs.Conflict, err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("venue %s: %w", v.ID, err)
		}
		n++
	}
	for _, e := range d.Events {
		err := s.CreateEvent(ctx, e)
		if errs.Is(errs.Conflict, err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("event %s: %w", e.ID, err)
		}
		n++
	}
	return n, nil
}
