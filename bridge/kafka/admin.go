package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/internal/errs"
)

// Admin creates and deletes topics. Its methods may be called concurrently.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin returns an admin client; it connects on first use.
func NewAdmin(c ClientConfig) (*Admin, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(c.opts()...)
	if err != nil {
		return nil, wrap("new admin", err)
	}
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client.
func (a *Admin) Close() { a.cl.Close() }

// EnsureTopics creates the topics that do not exist and waits, until ctx is
// done, for every partition of every topic to have a leader. A topic that
// exists with another partition count is an error (of kind Conflict): the
// partition of a key depends on the count, so the bridge must not write to a
// topic laid out differently from what it was configured with.
func (a *Admin) EnsureTopics(ctx context.Context, specs ...TopicSpec) error {
	for _, s := range specs {
		if err := ValidateTopicName(s.Name); err != nil {
			return err
		}
		if s.Partitions < 1 {
			return errs.Errorf("kafka.ensure_topics", errs.Invalid, "topic %s: partitions %d is below 1", s.Name, s.Partitions)
		}
		rf := s.ReplicationFactor
		if rf == 0 {
			rf = -1
		}
		res, err := a.adm.CreateTopic(ctx, s.Partitions, rf, nil, s.Name)
		if err == nil {
			err = res.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return wrap("create topic "+s.Name, err)
		}
	}
	return a.waitLeaders(ctx, specs)
}

func (a *Admin) waitLeaders(ctx context.Context, specs []TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := a.adm.ListTopics(ctx, names...)
		pending := ""
		if err != nil {
			pending = err.Error()
		}
		for _, s := range specs {
			if pending != "" {
				break
			}
			d, ok := details[s.Name]
			switch {
			case !ok || d.Err != nil:
				pending = fmt.Sprintf("topic %s not in metadata yet (%v)", s.Name, d.Err)
			case len(d.Partitions) != int(s.Partitions) && len(d.Partitions) > 0:
				return errs.Errorf("kafka.ensure_topics", errs.Conflict,
					"topic %s exists with %d partitions, configured %d", s.Name, len(d.Partitions), s.Partitions)
			case len(d.Partitions) == 0:
				pending = fmt.Sprintf("topic %s has no partitions in metadata yet", s.Name)
			}
			for _, p := range d.Partitions {
				if pending == "" && (p.Err != nil || p.Leader < 0) {
					pending = fmt.Sprintf("topic %s partition %d has no leader yet", s.Name, p.Partition)
				}
			}
		}
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return wrap("ensure topics", fmt.Errorf("%s: %w", pending, ctx.Err()))
		case <-tick.C:
		}
	}
}

// DeleteTopics deletes topics; topics that do not exist are not an error.
func (a *Admin) DeleteTopics(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	res, err := a.adm.DeleteTopics(ctx, names...)
	if err != nil {
		return wrap("delete topics", err)
	}
	for _, r := range res {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return wrap("delete topic "+r.Topic, r.Err)
		}
	}
	return nil
}

// Partitions returns a topic's partition count.
func (a *Admin) Partitions(ctx context.Context, topic string) (int, error) {
	details, err := a.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, wrap("list topics", err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return 0, errs.Errorf("kafka.partitions", errs.NotFound, "topic %s does not exist", topic)
	}
	if d.Err != nil {
		return 0, wrap("topic "+topic, d.Err)
	}
	return len(d.Partitions), nil
}

// Kadm returns the underlying franz-go admin client, for what this type
// does not cover (tests read committed offsets and end offsets with it).
func (a *Admin) Kadm() *kadm.Client { return a.adm }
