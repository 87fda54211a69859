// Package natskv stores identity users in a JetStream key-value bucket, the
// embedded default of `ticketing dev`. Two kinds of keys:
//
//	user.<id>             the user, JSON
//	email.<sha256(email)> the claim of a normalized address: the user id and
//	                      whether the create that claimed it completed
//
// A bucket has no transactions, so Create writes the keys in an order that
// keeps the email unique whatever fails: first the claim, with KV Create (a
// compare-and-set on "no such key", so of concurrent creates with one
// address exactly one gets it), then the user with KV Create (the id is
// taken once), then the claim again, marked committed, with KV Update on
// the revision it claimed. A create that fails after claiming gives its
// claim back. A claim left behind by a process that died is recognized by
// its age (Config.ClaimTimeout) and taken over, with a compare-and-set on
// its revision; if the dead create had already stored its user, the claim
// is completed for that user instead. ByEmail trusts only committed claims.
package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/identity"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "identity-users".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// ClaimTimeout is how long an uncompleted email claim is respected
	// before another create may take it over: longer than any create can
	// take between its first and last write. Default 30s.
	ClaimTimeout time.Duration
	// Now is the clock, compared with the server's time of a claim.
	// Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "identity-users"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.ClaimTimeout == 0 {
		c.ClaimTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf("identity.natskv", errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	if c.ClaimTimeout < time.Second {
		return errs.Errorf("identity.natskv", errs.Invalid, "claim timeout %v is below 1s", c.ClaimTimeout)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "identity users and their email claims",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 64 << 10,
	}
}

// Store is an identity.Store on a key-value bucket. Safe for concurrent
// use, also by several processes on one bucket.
type Store struct {
	kv  jetstream.KeyValue
	nc  *nats.Conn // for reads from the bucket's leader (kvget); nil: none
	cfg Config
}

var _ identity.Store = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("identity.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	return &Store{kv: kv, nc: js.Conn(), cfg: c}, nil
}

// New returns a store on an existing bucket.
func New(kv jetstream.KeyValue, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Store{kv: kv, cfg: c}, nil
}

// claim is the value of an email key.
type claim struct {
	UserID    string `json:"user_id"`
	Email     string `json:"email"`
	Committed bool   `json:"committed"`
}

func userKey(id string) string { return "user." + id }

func emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email." + hex.EncodeToString(sum[:])
}

func errEmailTaken(op string) error {
	return errs.E(op, errs.Conflict, "a user with this email address exists").WithReason(identity.ReasonEmailTaken)
}

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "user store unavailable", err)
}

// Create implements identity.Store.
func (s *Store) Create(ctx context.Context, u identity.User) error {
	const op = "identity.create"
	u, err := identity.Normalize(u)
	if err != nil {
		return errs.E(op, err)
	}
	ekey := emailKey(u.Email)
	mine := claim{UserID: u.ID, Email: u.Email}
	rev, err := s.claimEmail(ctx, op, ekey, mine)
	if err != nil {
		return err
	}
	release := func() {
		// Give the claim back unless someone took it over meanwhile. A
		// cancelled ctx must not leave it behind, so use a fresh one.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.kv.Delete(c, ekey, jetstream.LastRevision(rev))
	}

	b, _ := json.Marshal(u)
	urev, err := s.kv.Create(ctx, userKey(u.ID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		release()
		return errs.E(op, errs.Conflict, "the user id is taken").WithReason(identity.ReasonIDTaken)
	}
	if err != nil {
		// The user may have been stored all the same (a timeout): keep
		// the claim, settle decides once it is overdue.
		return unavailable(op, err)
	}

	mine.Committed = true
	cb, _ := json.Marshal(mine)
	_, err = s.kv.Update(ctx, ekey, cb, rev)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// Unknown outcome: the user is stored; if the commit did not land,
		// the claim is completed by the next reader or create of the
		// address once it is overdue (settle).
		return unavailable(op, err)
	}
	// The claim changed since we took it: completed for us by a reader
	// that found our user (fine), or taken over because we were overdue;
	// then our user must go, the address is someone else's.
	e, err := s.kv.Get(ctx, ekey)
	switch {
	case err == nil:
		var c claim
		if json.Unmarshal(e.Value(), &c) == nil && c.UserID == u.ID && c.Committed {
			return nil
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return unavailable(op, err)
	}
	dc, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.kv.Delete(dc, userKey(u.ID), jetstream.LastRevision(urev)); err != nil {
		return unavailable(op, err)
	}
	return errEmailTaken(op)
}

// claimEmail takes the address for mine.UserID and returns the claim's
// revision, or a conflict when another user has or is creating it.
func (s *Store) claimEmail(ctx context.Context, op, key string, mine claim) (uint64, error) {
	b, _ := json.Marshal(mine)
	for attempt := 0; attempt < 8; attempt++ {
		rev, err := s.kv.Create(ctx, key, b)
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, unavailable(op, err)
		}
		// Read from the leader if a replica lags behind the Create that
		// just said the key exists.
		e, err := kvget.GetEntry(ctx, s.nc, s.kv, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // given back meanwhile: try again
		}
		if err != nil {
			return 0, unavailable(op, err)
		}
		st, err := s.settle(ctx, e)
		if err != nil {
			return 0, unavailable(op, err)
		}
		switch st {
		case held, completed:
			return 0, errEmailTaken(op)
		case abandoned:
			rev, err := s.kv.Update(ctx, key, b, e.Revision())
			if err == nil {
				return rev, nil
			}
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return 0, unavailable(op, err)
			}
		}
		// changed under us: look again
	}
	return 0, errs.E(op, errs.Unavailable, "email claim contended; try again")
}

type claimState int

const (
	held      claimState = iota // committed, or a create in progress: the address is taken
	abandoned                   // its create failed or died before storing its user: free to take over
	completed                   // its create died after storing its user; settle committed the claim for it
	changed                     // the claim changed while we looked
)

// settle judges an existing claim, completing it when its create died
// after storing its user.
func (s *Store) settle(ctx context.Context, e jetstream.KeyValueEntry) (claimState, error) {
	var c claim
	if err := json.Unmarshal(e.Value(), &c); err != nil || c.UserID == "" {
		return abandoned, nil // unreadable: no create can complete it
	}
	if c.Committed {
		return held, nil
	}
	owner, err := s.user(ctx, c.UserID)
	switch {
	case errs.Is(errs.NotFound, err):
		// The create has not stored its user yet, or never will.
		if s.cfg.Now().Sub(e.Created()) < s.cfg.ClaimTimeout {
			return held, nil
		}
		return abandoned, nil
	case err != nil:
		return held, err
	case owner.Email != c.Email:
		// Its create lost on the user id and is giving the claim back.
		return abandoned, nil
	}
	// Its user is stored. While the create is alive it commits itself;
	// once it is overdue, commit for it.
	if s.cfg.Now().Sub(e.Created()) < s.cfg.ClaimTimeout {
		return held, nil
	}
	c.Committed = true
	b, _ := json.Marshal(c)
	if _, err := s.kv.Update(ctx, e.Key(), b, e.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return changed, nil
		}
		return held, err
	}
	return completed, nil
}

func (s *Store) user(ctx context.Context, id string) (identity.User, error) {
	e, err := s.kv.Get(ctx, userKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return identity.User{}, errs.E(errs.NotFound, "no such user")
	}
	if err != nil {
		return identity.User{}, err
	}
	var u identity.User
	if err := json.Unmarshal(e.Value(), &u); err != nil {
		return identity.User{}, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

// ByID implements identity.Store.
func (s *Store) ByID(ctx context.Context, id string) (identity.User, error) {
	const op = "identity.by_id"
	if !identity.ValidID(id) {
		return identity.User{}, errs.E(op, errs.NotFound, "no such user")
	}
	u, err := s.user(ctx, id)
	switch {
	case errs.Is(errs.NotFound, err):
		return identity.User{}, errs.E(op, err)
	case err != nil:
		return identity.User{}, unavailable(op, err)
	}
	return u, nil
}

// ByEmail implements identity.Store.
func (s *Store) ByEmail(ctx context.Context, email string) (identity.User, error) {
	const op = "identity.by_email"
	notFound := errs.E(op, errs.NotFound, "no such user")
	email, err := identity.NormalizeEmail(email)
	if err != nil {
		return identity.User{}, notFound
	}
	for attempt := 0; attempt < 4; attempt++ {
		e, err := s.kv.Get(ctx, emailKey(email))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return identity.User{}, notFound
		}
		if err != nil {
			return identity.User{}, unavailable(op, err)
		}
		var c claim
		if err := json.Unmarshal(e.Value(), &c); err != nil || c.Email != email {
			return identity.User{}, notFound
		}
		if !c.Committed {
			st, err := s.settle(ctx, e)
			if err != nil {
				return identity.User{}, unavailable(op, err)
			}
			if st == changed || st == completed {
				continue // read the claim again
			}
			return identity.User{}, notFound // in progress, or abandoned
		}
		u, err := s.user(ctx, c.UserID)
		if errs.Is(errs.NotFound, err) {
			return identity.User{}, notFound
		}
		if err != nil {
			return identity.User{}, unavailable(op, err)
		}
		if u.Email != email {
			return identity.User{}, notFound
		}
		return u, nil
	}
	return identity.User{}, errs.E(op, errs.Unavailable, "email claim contended; try again")
}
