// Package natskv stores identity accounts and their mailed links in a
// JetStream key-value bucket, the embedded default of `ticketing dev`.
// Three kinds of keys:
//
//	user.<id>             the account, JSON; its Version is this key's revision
//	email.<sha256(email)> the claim of a normalized address: the user id,
//	                      whether the write that claimed it completed, and
//	                      whether that write is a Create or an email change
//	link.<hash>           a link, JSON
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
// is completed for that user instead. ByEmail trusts only committed claims,
// and only for a user that has that address.
//
// Update writes the account with KV Update on the revision the caller read
// (Account.Version), so of concurrent updates from one version exactly one
// lands. An update that changes the address first claims the new one as
// Create does (a claim marked as a change), then writes the account, then
// commits the claim, then deletes the old address's claim; if the account
// moved on from the caller's version it gives the new claim back. A
// committed claim whose user has since moved to an address that is
// committed to them is stale (the update died before deleting it) and is
// taken over like an abandoned one; while the move is unfinished the old
// address stays the user's. If
// the new claim was taken over before it could be committed (the update
// was overdue), the update puts the account back as it was and fails.
//
// TakeLink reads a link and deletes it with a compare-and-set on the
// revision it read, so of concurrent takes exactly one gets it. Expiry is
// judged by this process's clock (Config.Now) against the link's ExpiresAt,
// not by the server's: the processes sharing a bucket need clocks kept in
// step (NTP), and a skew of seconds does not matter to links that live for
// minutes. Links nobody takes stay in the bucket; nothing purges them yet.
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
	// before another write may take it over: longer than any create or
	// update can take between its first and last write. Default 30s.
	ClaimTimeout time.Duration
	// Now is the clock, compared with the server's time of a claim and
	// with links' expiry. Default time.Now.
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

// MaxValueSize bounds a value in the bucket. The largest account
// NormalizeAccount allows is dominated by its passkeys (MaxPasskeys
// credentials of MaxCredential bytes, base64 in JSON): about 260 KiB.
const MaxValueSize = 512 << 10

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "identity accounts, their email claims and mailed links",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: MaxValueSize,
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
	// Change marks the uncommitted claim of an Update moving an existing
	// user to this address (not of a Create): until the update writes the
	// user, the user still has its old address. Cleared on commit.
	Change bool `json:"change,omitempty"`
}

func userKey(id string) string { return "user." + id }

func linkKey(hash string) string { return "link." + hash }

func emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email." + hex.EncodeToString(sum[:])
}

func errEmailTaken(op string) error {
	return errs.E(op, errs.Conflict, "a user with this email address exists").WithReason(identity.ReasonEmailTaken)
}

func errVersion(op string) error {
	return errs.E(op, errs.Conflict, "the account changed since it was read").WithReason(identity.ReasonVersionMismatch)
}

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "user store unavailable", err)
}

// encode is the stored form of an account (Version is not in it).
func encode(a identity.Account) []byte {
	b, _ := json.Marshal(a)
	return b
}

// cleanup is a context for giving back what a failed or finished write
// held: a cancelled ctx must not leave it behind.
func cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// release gives a claim back unless someone took it over meanwhile.
func (s *Store) release(ctx context.Context, key string, rev uint64) {
	c, cancel := cleanup(ctx)
	defer cancel()
	_ = s.kv.Delete(c, key, jetstream.LastRevision(rev))
}

// Create implements identity.Store.
func (s *Store) Create(ctx context.Context, a identity.Account) (identity.Account, error) {
	const op = "identity.create"
	a, err := identity.NormalizeAccount(a)
	if err != nil {
		return identity.Account{}, errs.E(op, err)
	}
	ekey := emailKey(a.Email)
	mine := claim{UserID: a.ID, Email: a.Email}
	rev, err := s.claimEmail(ctx, op, ekey, mine)
	if err != nil {
		return identity.Account{}, err
	}

	urev, err := s.kv.Create(ctx, userKey(a.ID), encode(a))
	if errors.Is(err, jetstream.ErrKeyExists) {
		s.release(ctx, ekey, rev)
		return identity.Account{}, errs.E(op, errs.Conflict, "the user id is taken").WithReason(identity.ReasonIDTaken)
	}
	if err != nil {
		// The user may have been stored all the same (a timeout): keep
		// the claim, settle decides once it is overdue.
		return identity.Account{}, unavailable(op, err)
	}
	a.Version = urev

	mine.Committed = true
	cb, _ := json.Marshal(mine)
	_, err = s.kv.Update(ctx, ekey, cb, rev)
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// Unknown outcome: the user is stored; if the commit did not land,
		// the claim is completed by the next reader or create of the
		// address once it is overdue (settle).
		return identity.Account{}, unavailable(op, err)
	}
	// The claim changed since we took it: completed for us by a reader
	// that found our user (fine), or taken over because we were overdue;
	// then our user must go, the address is someone else's.
	ours, err := s.committedTo(ctx, ekey, a.ID)
	if err != nil {
		return identity.Account{}, unavailable(op, err)
	}
	if ours {
		return a, nil
	}
	dc, cancel := cleanup(ctx)
	defer cancel()
	if err := s.kv.Delete(dc, userKey(a.ID), jetstream.LastRevision(urev)); err != nil {
		return identity.Account{}, unavailable(op, err)
	}
	return identity.Account{}, errEmailTaken(op)
}

// committedTo reports whether the claim at key is committed to user id.
func (s *Store) committedTo(ctx context.Context, key, id string) (bool, error) {
	e, err := kvget.GetEntry(ctx, s.nc, s.kv, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var c claim
	return json.Unmarshal(e.Value(), &c) == nil && c.UserID == id && c.Committed, nil
}

// Update implements identity.Store.
func (s *Store) Update(ctx context.Context, a identity.Account) (identity.Account, error) {
	const op = "identity.update"
	a, err := identity.NormalizeAccount(a)
	if err != nil {
		return identity.Account{}, errs.E(op, err)
	}
	old, err := s.current(ctx, a.ID, a.Version)
	switch {
	case errs.Is(errs.NotFound, err):
		return identity.Account{}, errs.E(op, err)
	case err != nil:
		return identity.Account{}, unavailable(op, err)
	case old.Version != a.Version:
		return identity.Account{}, errVersion(op)
	case !old.CreatedAt.Equal(a.CreatedAt):
		return identity.Account{}, errs.E(op, errs.Invalid, "an account's creation time cannot change")
	case old.Email != a.Email:
		return s.changeEmail(ctx, op, old, a)
	}
	rev, err := s.kv.Update(ctx, userKey(a.ID), encode(a), a.Version)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return identity.Account{}, errVersion(op)
	}
	if err != nil {
		return identity.Account{}, unavailable(op, err)
	}
	a.Version = rev
	return a, nil
}

// current reads the account of id for an update from version: from the
// bucket's leader too when the replica that answered has not got the key
// or has another revision (it may lag behind the caller's read).
func (s *Store) current(ctx context.Context, id string, version uint64) (identity.Account, error) {
	a, err := s.user(ctx, id)
	if err == nil && a.Version != version && s.nc != nil {
		e, err := kvget.LeaderEntry(ctx, s.nc, s.kv, userKey(id))
		if err != nil {
			return identity.Account{}, err
		}
		return decodeUser(e)
	}
	return a, err
}

// changeEmail is Update moving the account from old's address to a's.
func (s *Store) changeEmail(ctx context.Context, op string, old, a identity.Account) (identity.Account, error) {
	ekey := emailKey(a.Email)
	mine := claim{UserID: a.ID, Email: a.Email, Change: true}
	crev, err := s.claimEmail(ctx, op, ekey, mine)
	if err != nil {
		return identity.Account{}, err
	}
	urev, err := s.kv.Update(ctx, userKey(a.ID), encode(a), a.Version)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		s.release(ctx, ekey, crev)
		return identity.Account{}, errVersion(op)
	}
	if err != nil {
		// The account may have been written all the same: keep the
		// claim, settle decides by the account's address once the claim
		// is overdue.
		return identity.Account{}, unavailable(op, err)
	}

	mine.Committed, mine.Change = true, false
	cb, _ := json.Marshal(mine)
	_, err = s.kv.Update(ctx, ekey, cb, crev)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		// Completed for us by a reader, or taken over because we were
		// overdue: then the address is someone else's and the account
		// goes back to the one it had, which is still held for it (a
		// claim is stale only once its user's new address is committed
		// to them).
		ours, err := s.committedTo(ctx, ekey, a.ID)
		if err != nil {
			return identity.Account{}, unavailable(op, err)
		}
		if !ours {
			rc, cancel := cleanup(ctx)
			defer cancel()
			if _, err := s.kv.Update(rc, userKey(a.ID), encode(old), urev); err != nil {
				return identity.Account{}, unavailable(op, fmt.Errorf("putting back account %s after losing its new address: %w", a.ID, err))
			}
			return identity.Account{}, errEmailTaken(op)
		}
	default:
		// Unknown outcome: the account has its new address; the claim is
		// completed by settle once it is overdue, and the old one is
		// stale from then on.
		return identity.Account{}, unavailable(op, err)
	}
	s.dropClaim(ctx, old)
	a.Version = urev
	return a, nil
}

// dropClaim deletes the claim of old's address after the account moved to
// another, unless it changed meanwhile (taken over as stale, or claimed by
// a later update moving the account back). A claim left behind is stale
// and taken over when someone wants the address (settle).
func (s *Store) dropClaim(ctx context.Context, old identity.Account) {
	c, cancel := cleanup(ctx)
	defer cancel()
	key := emailKey(old.Email)
	e, err := s.kv.Get(c, key)
	if err != nil {
		return
	}
	var cl claim
	if json.Unmarshal(e.Value(), &cl) != nil || cl.UserID != old.ID || cl.Email != old.Email || cl.Change {
		return
	}
	_ = s.kv.Delete(c, key, jetstream.LastRevision(e.Revision()))
}

// claimEmail takes the address for mine.UserID and returns the claim's
// revision, or a conflict when another user has or is taking it.
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
	held      claimState = iota // committed, or a write in progress: the address is taken
	abandoned                   // its write failed or died before storing its user, or its user moved away: free to take over
	completed                   // its write died after storing its user; settle committed the claim for it
	changed                     // the claim changed while we looked
)

// settle judges an existing claim, completing it when its write died
// after storing its user.
func (s *Store) settle(ctx context.Context, e jetstream.KeyValueEntry) (claimState, error) {
	var c claim
	if err := json.Unmarshal(e.Value(), &c); err != nil || c.UserID == "" {
		return abandoned, nil // unreadable: no write can complete it
	}
	owner, err := s.user(ctx, c.UserID)
	if c.Committed {
		switch {
		case errs.Is(errs.NotFound, err):
			return held, nil // no user behind a committed claim: not ours to judge
		case err != nil:
			return held, err
		case owner.Email == c.Email:
			return held, nil
		}
		// Its user moved to another address; the claim is stale once
		// that one is committed to them.
		moved, err := s.movedAway(ctx, owner)
		if err != nil || !moved {
			return held, err
		}
		return abandoned, nil
	}
	fresh := s.cfg.Now().Sub(e.Created()) < s.cfg.ClaimTimeout
	switch {
	case errs.Is(errs.NotFound, err):
		// The create has not stored its user yet, or never will.
		if fresh {
			return held, nil
		}
		return abandoned, nil
	case err != nil:
		return held, err
	case owner.Email != c.Email:
		if c.Change && fresh {
			return held, nil // the update has not written its user yet
		}
		// A create that lost on the user id, or an update that lost on
		// the version: each is giving the claim back. Or an update that
		// died before writing its user.
		return abandoned, nil
	}
	// Its user is stored. While the write is alive it commits itself;
	// once it is overdue, commit for it.
	if fresh {
		return held, nil
	}
	c.Committed, c.Change = true, false
	b, _ := json.Marshal(c)
	if _, err := s.kv.Update(ctx, e.Key(), b, e.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return changed, nil
		}
		return held, err
	}
	return completed, nil
}

// movedAway reports whether u's address is committed to u, completing its
// claim if the update that moved u there died after writing u: then u's
// claims of other addresses are stale.
func (s *Store) movedAway(ctx context.Context, u identity.Account) (bool, error) {
	e, err := kvget.GetEntry(ctx, s.nc, s.kv, emailKey(u.Email))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var c claim
	if json.Unmarshal(e.Value(), &c) != nil || c.UserID != u.ID || c.Email != u.Email {
		return false, nil
	}
	if c.Committed {
		return true, nil
	}
	st, err := s.settle(ctx, e) // uncommitted: settle does not come back here
	return st == completed, err
}

// user reads the account of id, from the leader too if the replica that
// answered has not got it; errs.NotFound if there is none.
func (s *Store) user(ctx context.Context, id string) (identity.Account, error) {
	e, err := kvget.GetEntry(ctx, s.nc, s.kv, userKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return identity.Account{}, errs.E(errs.NotFound, "no such user")
	}
	if err != nil {
		return identity.Account{}, err
	}
	return decodeUser(e)
}

func decodeUser(e jetstream.KeyValueEntry) (identity.Account, error) {
	var a identity.Account
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return identity.Account{}, fmt.Errorf("%s: %w", e.Key(), err)
	}
	a.Version = e.Revision()
	return a, nil
}

// ByID implements identity.Store.
func (s *Store) ByID(ctx context.Context, id string) (identity.Account, error) {
	const op = "identity.by_id"
	if !identity.ValidID(id) {
		return identity.Account{}, errs.E(op, errs.NotFound, "no such user")
	}
	a, err := s.user(ctx, id)
	switch {
	case errs.Is(errs.NotFound, err):
		return identity.Account{}, errs.E(op, err)
	case err != nil:
		return identity.Account{}, unavailable(op, err)
	}
	return a, nil
}

// ByEmail implements identity.Store.
func (s *Store) ByEmail(ctx context.Context, email string) (identity.Account, error) {
	const op = "identity.by_email"
	notFound := errs.E(op, errs.NotFound, "no such user")
	email, err := identity.NormalizeEmail(email)
	if err != nil {
		return identity.Account{}, notFound
	}
	for attempt := 0; attempt < 4; attempt++ {
		e, err := s.kv.Get(ctx, emailKey(email))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return identity.Account{}, notFound
		}
		if err != nil {
			return identity.Account{}, unavailable(op, err)
		}
		var c claim
		if err := json.Unmarshal(e.Value(), &c); err != nil || c.Email != email {
			return identity.Account{}, notFound
		}
		if !c.Committed {
			st, err := s.settle(ctx, e)
			if err != nil {
				return identity.Account{}, unavailable(op, err)
			}
			if st == changed || st == completed {
				continue // read the claim again
			}
			return identity.Account{}, notFound // in progress, or abandoned
		}
		a, err := s.user(ctx, c.UserID)
		if errs.Is(errs.NotFound, err) {
			return identity.Account{}, notFound
		}
		if err != nil {
			return identity.Account{}, unavailable(op, err)
		}
		if a.Email != email {
			return identity.Account{}, notFound // a stale claim: the user moved away
		}
		return a, nil
	}
	return identity.Account{}, errs.E(op, errs.Unavailable, "email claim contended; try again")
}

// PutLink implements identity.Store. The link's user must exist
// (errs.Invalid otherwise), as the PostgreSQL store's foreign key has it.
func (s *Store) PutLink(ctx context.Context, l identity.Link) error {
	const op = "identity.put_link"
	l, err := identity.CheckLink(l)
	if err != nil {
		return errs.E(op, err)
	}
	// Users are never deleted (but by a Create that fails, before anyone
	// can have been sent a link), so the check cannot go stale.
	_, err = s.user(ctx, l.UserID)
	switch {
	case errs.Is(errs.NotFound, err):
		return errs.E(op, errs.Invalid, "the link's user does not exist")
	case err != nil:
		return unavailable(op, err)
	}
	b, _ := json.Marshal(l)
	_, err = s.kv.Create(ctx, linkKey(l.Hash), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errs.E(op, errs.Conflict, "a link with this hash exists")
	}
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// TakeLink implements identity.Store.
func (s *Store) TakeLink(ctx context.Context, hash string) (identity.Link, error) {
	const op = "identity.take_link"
	notFound := errs.E(op, errs.NotFound, "no such link")
	if !identity.ValidLinkHash(hash) {
		return identity.Link{}, notFound // nor a key to look up: it could be a wildcard
	}
	key := linkKey(hash)
	e, err := kvget.GetEntry(ctx, s.nc, s.kv, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return identity.Link{}, notFound
	}
	if err != nil {
		return identity.Link{}, unavailable(op, err)
	}
	var l identity.Link
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return identity.Link{}, errs.E(op, errs.Other, fmt.Errorf("%s: %w", key, err))
	}
	if l.Hash != hash || !s.cfg.Now().Before(l.ExpiresAt) {
		return identity.Link{}, notFound
	}
	err = s.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return identity.Link{}, notFound // another take got it
	}
	if err != nil {
		return identity.Link{}, unavailable(op, err)
	}
	return l, nil
}
