package vault

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// Config configures a Vault.
type Config struct {
	// Keyring holds the KEKs. Required (ReadKeyring, KeyringFromEnv).
	Keyring Keyring
	// CardsPerDEK is how many cards one data key seals before this
	// process makes a new one. Default 10000; at most 1<<20, far below
	// the 2^32 messages AES-GCM with random nonces allows per key.
	CardsPerDEK int
	// DEKLifetime is how long this process seals with one data key
	// before it makes a new one, however few cards it sealed. Default
	// 24h; at least 1m.
	DEKLifetime time.Duration
	// CVCLifetime is how long a CVC is kept when ForgetCVC is never
	// called (the buyer left before paying). Default 15m; 1m to 24h.
	CVCLifetime time.Duration
	// CachedDEKs bounds the unwrapped data keys Open keeps in memory.
	// Default 1024.
	CachedDEKs int
	// Now is the clock: expiry checks, creation times. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.CardsPerDEK == 0 {
		c.CardsPerDEK = 10000
	}
	if c.DEKLifetime == 0 {
		c.DEKLifetime = 24 * time.Hour
	}
	if c.CVCLifetime == 0 {
		c.CVCLifetime = 15 * time.Minute
	}
	if c.CachedDEKs == 0 {
		c.CachedDEKs = 1024
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "vault.config"
	switch {
	case c.Keyring.IsZero():
		return errs.E(op, errs.Invalid, "the vault needs a keyring")
	case c.CardsPerDEK < 1 || c.CardsPerDEK > 1<<20:
		return errs.Errorf(op, errs.Invalid, "cards per DEK must be 1 to %d", 1<<20)
	case c.DEKLifetime < time.Minute:
		return errs.Errorf(op, errs.Invalid, "DEK lifetime %v is below 1m", c.DEKLifetime)
	case c.CVCLifetime < time.Minute || c.CVCLifetime > 24*time.Hour:
		return errs.Errorf(op, errs.Invalid, "CVC lifetime %v is not within 1m to 24h", c.CVCLifetime)
	case c.CachedDEKs < 1:
		return errs.E(op, errs.Invalid, "cached DEKs must be at least 1")
	}
	return nil
}

// Reasons refining the errors of New and Rewrap.
const (
	// ReasonFingerprintKeyChanged: the keyring's fingerprint key is not
	// the one the stored cards were fingerprinted with.
	ReasonFingerprintKeyChanged = "fingerprint_key_changed"
	// ReasonKEKMissing: a data key is wrapped by a KEK the keyring lacks.
	ReasonKEKMissing = "kek_missing"
)

// ErrIntegrity is in the chain of every error about a sealed record that
// does not open: changed, moved to another record, or under another key.
// Its kind is errs.Other: it is never the caller's fault.
var ErrIntegrity = errors.New("sealed record does not open: altered, moved, or sealed under another key")

// Vault seals cards for the payment service (see the package doc). Safe
// for concurrent use.
type Vault struct {
	store Store
	cfg   Config
	fpKey []byte

	mu  sync.Mutex // guards cur
	cur *sealingKey

	cacheMu sync.Mutex
	cache   map[string]cipher.AEAD // unwrapped data keys by id
}

// sealingKey is the data key this process seals new cards with.
type sealingKey struct {
	id      string
	aead    cipher.AEAD
	sealed  int
	created time.Time
}

// New returns a vault on store. It records the fingerprint key's check
// value in the store the first time, and refuses (errs.Invalid,
// ReasonFingerprintKeyChanged) a keyring whose fingerprint key differs
// from the one recorded: that would give the same card another
// fingerprint.
func New(ctx context.Context, store Store, c Config) (*Vault, error) {
	const op = "vault.new"
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	v := &Vault{store: store, cfg: c, fpKey: c.Keyring.fingerprintKey(), cache: map[string]cipher.AEAD{}}
	check := v.fingerprintCheck()
	stored, err := store.FingerprintCheck(ctx, check)
	if err != nil {
		return nil, errs.E(op, err)
	}
	if !hmac.Equal([]byte(stored), []byte(check)) {
		return nil, errs.Errorf(op, errs.Invalid,
			"the keyring's fingerprint key (derived from KEK %s) is not the one the stored cards were fingerprinted with: designate the KEK designated before",
			c.Keyring.FingerprintID()).WithReason(ReasonFingerprintKeyChanged)
	}
	return v, nil
}

// fingerprintCheck is a value that identifies the fingerprint key without
// revealing it.
func (v *Vault) fingerprintCheck() string {
	m := hmac.New(sha256.New, v.fpKey)
	m.Write([]byte("ticketing payment vault fingerprint check"))
	return "v1:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// Fingerprint returns a card number's fingerprint (see Token); number is
// ASCII digits, as CheckCard leaves it.
func (v *Vault) Fingerprint(number string) string {
	m := hmac.New(sha256.New, v.fpKey)
	m.Write([]byte(number))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Associated data: a fixed label per kind of record, then the ids it is
// bound to, separated by NUL (no id can contain one).
func adCard(tokenID, keyID string) []byte {
	return []byte("ticketing payment vault card v1\x00" + tokenID + "\x00" + keyID)
}

func adCVC(tokenID, keyID string) []byte {
	return []byte("ticketing payment vault cvc v1\x00" + tokenID + "\x00" + keyID)
}

func adKey(keyID, kekID string) []byte {
	return []byte("ticketing payment vault dek v1\x00" + keyID + "\x00" + kekID)
}

func seal(a cipher.AEAD, plain, ad []byte) []byte {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, plain, ad)
}

func open(a cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, ErrIntegrity
	}
	p, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad)
	if err != nil {
		return nil, ErrIntegrity
	}
	return p, nil
}

// sealedCard is the sealed plaintext of a card. It holds the number:
// like payment.Card it prints as nothing.
type sealedCard struct {
	Number   string `json:"n"`
	ExpMonth int    `json:"m"`
	ExpYear  int    `json:"y"`
}

func (sealedCard) String() string               { return "sealed card" }
func (c sealedCard) GoString() string           { return c.String() }
func (c sealedCard) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// Seal validates a card (CheckCard: errs.Invalid with a reason), stores
// it sealed, and returns its token. The CVC, when there is one, is sealed
// apart and kept until ForgetCVC, or Config.CVCLifetime at most.
func (v *Vault) Seal(ctx context.Context, c payment.Card) (Token, error) {
	const op = "vault.seal"
	now := v.cfg.Now()
	c, brand, err := CheckCard(c, now)
	if err != nil {
		return Token{}, err
	}
	k, err := v.sealingKey(ctx, now)
	if err != nil {
		return Token{}, errs.E(op, err)
	}
	t := Token{
		ID:          NewTokenID(),
		Brand:       brand,
		Last4:       c.Number[len(c.Number)-4:],
		ExpMonth:    c.ExpMonth,
		ExpYear:     c.ExpYear,
		Fingerprint: v.Fingerprint(c.Number),
		Created:     timestamp(now),
	}
	plain, _ := json.Marshal(sealedCard{Number: c.Number, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear})
	// The CVC with the card, or before it: a card stored without its CVC
	// would be confirmed without one; a CVC left without its card
	// expires.
	var cvc *SealedCVC
	if c.CVC != "" {
		cvc = &SealedCVC{TokenID: t.ID, KeyID: k.id, Sealed: seal(k.aead, []byte(c.CVC), adCVC(t.ID, k.id)),
			ExpiresAt: timestamp(now.Add(v.cfg.CVCLifetime))}
	}
	sc := SealedCard{Token: t, KeyID: k.id, Sealed: seal(k.aead, plain, adCard(t.ID, k.id))}
	if err := v.store.PutCardWithCVC(ctx, sc, cvc); err != nil {
		return Token{}, errs.E(op, err)
	}
	return t, nil
}

// sealingKey reserves one use of this process's data key, making a new
// one when there is none, it sealed CardsPerDEK cards, or it is older than
// DEKLifetime.
func (v *Vault) sealingKey(ctx context.Context, now time.Time) (*sealingKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k := v.cur; k != nil && k.sealed < v.cfg.CardsPerDEK && now.Sub(k.created) < v.cfg.DEKLifetime {
		k.sealed++
		return k, nil
	}
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	kekID := v.cfg.Keyring.Active()
	kek, _ := v.cfg.Keyring.aead(kekID)
	id := NewKeyID()
	wk := WrappedKey{ID: id, KEK: kekID, Wrapped: seal(kek, key, adKey(id, kekID)), Created: timestamp(now)}
	if _, err := v.store.CreateKey(ctx, wk); err != nil {
		return nil, err
	}
	k := &sealingKey{id: id, aead: newAEAD(key), sealed: 1, created: now}
	v.cur = k
	v.remember(id, k.aead)
	return k, nil
}

// Token returns a stored card's token: errs.NotFound when there is none.
func (v *Vault) Token(ctx context.Context, id string) (Token, error) {
	const op = "vault.token"
	if !ValidTokenID(id) {
		return Token{}, errs.E(op, errs.NotFound, "no such card")
	}
	sc, err := v.store.Card(ctx, id)
	if err != nil {
		return Token{}, errs.E(op, err)
	}
	return sc.Token, nil
}

// Summary is what may be known of a stored card outside the vault
// (payment.Vault).
func (v *Vault) Summary(ctx context.Context, id string) (payment.CardSummary, error) {
	t, err := v.Token(ctx, id)
	return t.Summary(), err
}

// Open returns a stored card, its CVC included while it is kept:
// errs.NotFound when there is no such card, ErrIntegrity (errs.Other)
// when its record does not open. The card is for one gateway call: keep
// it no longer.
func (v *Vault) Open(ctx context.Context, id string) (payment.Card, error) {
	card, _, err := v.OpenCard(ctx, id)
	return card, err
}

// OpenCard is Open that also returns the card's summary (the token's
// public part, for the payment's record), from one read of the store
// (Store.CardAndCVC): the payment service's one vault read before a
// confirm (payment.Vault).
func (v *Vault) OpenCard(ctx context.Context, id string) (payment.Card, payment.CardSummary, error) {
	const op = "vault.open"
	if !ValidTokenID(id) {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, errs.NotFound, "no such card")
	}
	sc, cvc, err := v.store.CardAndCVC(ctx, id)
	if err != nil {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, err)
	}
	a, err := v.dataKey(ctx, sc.KeyID)
	if err != nil {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, err)
	}
	plain, err := open(a, sc.Sealed, adCard(id, sc.KeyID))
	if err != nil {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, errs.Other, fmt.Errorf("card %s: %w", id, err))
	}
	var p sealedCard
	if err := json.Unmarshal(plain, &p); err != nil {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, errs.Other, fmt.Errorf("card %s: %w", id, ErrIntegrity))
	}
	card := payment.Card{Number: p.Number, ExpMonth: p.ExpMonth, ExpYear: p.ExpYear}
	if cvc == nil {
		return card, sc.Token.Summary(), nil
	}
	a, err = v.dataKey(ctx, cvc.KeyID)
	if err != nil {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, err)
	}
	c, err := open(a, cvc.Sealed, adCVC(id, cvc.KeyID))
	if err != nil {
		return payment.Card{}, payment.CardSummary{}, errs.E(op, errs.Other, fmt.Errorf("cvc of card %s: %w", id, err))
	}
	card.CVC = string(c)
	return card, sc.Token.Summary(), nil
}

// ForgetCVC deletes a card's CVC: call it once the gateway has the
// authorization (PCI DSS forbids keeping it after). Forgetting a CVC
// that is gone, or of a card that does not exist, is not an error.
func (v *Vault) ForgetCVC(ctx context.Context, id string) error {
	const op = "vault.forget_cvc"
	if !ValidTokenID(id) {
		return nil
	}
	if err := v.store.DeleteCVC(ctx, id); err != nil {
		return errs.E(op, err)
	}
	return nil
}

// dataKey returns the AES-GCM of a data key, unwrapping it with its KEK
// the first time.
func (v *Vault) dataKey(ctx context.Context, id string) (cipher.AEAD, error) {
	v.cacheMu.Lock()
	a, ok := v.cache[id]
	v.cacheMu.Unlock()
	if ok {
		return a, nil
	}
	wk, err := v.store.Key(ctx, id)
	if errs.Is(errs.NotFound, err) {
		return nil, errs.E(errs.Other, fmt.Errorf("data key %s: %w", id, ErrIntegrity))
	}
	if err != nil {
		return nil, err
	}
	key, err := v.unwrap(wk)
	if err != nil {
		return nil, err
	}
	a = newAEAD(key)
	v.remember(id, a)
	return a, nil
}

func (v *Vault) unwrap(wk WrappedKey) ([]byte, error) {
	kek, ok := v.cfg.Keyring.aead(wk.KEK)
	if !ok {
		return nil, errs.Errorf("", errs.Other, "data key %s is wrapped by KEK %s, which the keyring lacks", wk.ID, wk.KEK).
			WithReason(ReasonKEKMissing)
	}
	key, err := open(kek, wk.Wrapped, adKey(wk.ID, wk.KEK))
	if err != nil || len(key) != KeySize {
		return nil, errs.E(errs.Other, fmt.Errorf("data key %s under KEK %s: %w", wk.ID, wk.KEK, ErrIntegrity))
	}
	return key, nil
}

// remember caches an unwrapped data key, dropping another when the cache
// is full.
func (v *Vault) remember(id string, a cipher.AEAD) {
	v.cacheMu.Lock()
	defer v.cacheMu.Unlock()
	if len(v.cache) >= v.cfg.CachedDEKs {
		for k := range v.cache {
			delete(v.cache, k)
			break
		}
	}
	v.cache[id] = a
}

// RewrapOptions tunes Rewrap.
type RewrapOptions struct {
	// After resumes after this data key id (RewrapProgress.Cursor of a
	// run that stopped); "" starts from the first. Starting from the
	// first again is correct too, only slower.
	After string
	// BatchSize is how many data keys are read at a time. Default 100.
	BatchSize int
	// Progress, when set, is called after each batch, from Rewrap's
	// goroutine.
	Progress func(RewrapProgress)
}

// RewrapProgress counts what Rewrap did so far.
type RewrapProgress struct {
	Scanned   int // data keys looked at
	Rewrapped int // re-wrapped under the active KEK by this run
	Current   int // under the active KEK already
	Failed    int // not re-wrapped: wrapped by a KEK the keyring lacks, or do not open
	// Cursor is the last data key id looked at: RewrapOptions.After to
	// resume from.
	Cursor string
	Done   bool // every data key was looked at
}

// Rewrap re-wraps every stored data key under the keyring's active KEK,
// in id order, a batch at a time; card ciphertexts are not touched (their
// associated data names the data key, not the KEK). A key under the
// active KEK already is skipped, so a run that stopped (an error, a
// cancelled context) can be repeated or resumed (After) and a finished
// run repeated changes nothing. Each key is replaced with a
// compare-and-set, so concurrent runs agree. Keys that cannot be unwrapped
// are counted in Failed and the run goes on; it then ends with an
// errs.Other error, ReasonKEKMissing when a KEK is missing. Run it once
// every process has the new keyring (a process on the old one still
// wraps its new data keys under the old KEK); KEKs then tells whether the
// old KEK is still referenced.
func (v *Vault) Rewrap(ctx context.Context, o RewrapOptions) (RewrapProgress, error) {
	const op = "vault.rewrap"
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	o.BatchSize = min(o.BatchSize, MaxKeysPage)
	active := v.cfg.Keyring.Active()
	kek, _ := v.cfg.Keyring.aead(active)
	p := RewrapProgress{Cursor: o.After}
	var firstFailure error
	for !p.Done {
		batch, err := v.store.Keys(ctx, p.Cursor, o.BatchSize)
		if err != nil {
			return p, errs.E(op, err)
		}
		for _, wk := range batch {
			if err := ctx.Err(); err != nil {
				return p, errs.E(op, errs.Unavailable, err)
			}
			p.Scanned++
			done, failure, err := v.rewrapKey(ctx, wk, active, kek)
			switch {
			case err != nil:
				return p, errs.E(op, err)
			case failure != nil:
				p.Failed++
				if firstFailure == nil {
					firstFailure = failure
				}
			case done:
				p.Rewrapped++
			default:
				p.Current++
			}
			p.Cursor = wk.ID
		}
		p.Done = len(batch) < o.BatchSize
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	if p.Failed > 0 {
		return p, errs.E(op, errs.Other, fmt.Sprintf("%d data keys were not re-wrapped", p.Failed), firstFailure).
			WithReason(errs.ReasonOf(firstFailure))
	}
	return p, nil
}

// rewrapKey re-wraps one data key under the active KEK: done false when
// it is under it already, failure when it does not unwrap, err when the
// store failed.
func (v *Vault) rewrapKey(ctx context.Context, wk WrappedKey, active string, kek cipher.AEAD) (done bool, failure, err error) {
	for attempt := 0; ; attempt++ {
		if wk.KEK == active {
			return false, nil, nil
		}
		key, failure := v.unwrap(wk)
		if failure != nil {
			return false, failure, nil
		}
		next := wk
		next.KEK, next.Wrapped = active, seal(kek, key, adKey(wk.ID, active))
		_, err = v.store.UpdateKey(ctx, next)
		if err == nil {
			return true, nil, nil
		}
		if !errs.Is(errs.Conflict, err) || attempt >= 3 {
			return false, nil, err
		}
		// Another run re-wrapped it meanwhile: look again.
		if wk, err = v.store.Key(ctx, wk.ID); err != nil {
			return false, nil, err
		}
	}
}

// KEKUse is what references one KEK.
type KEKUse struct {
	ID          string
	DEKs        int  // stored data keys it wraps
	Active      bool // it wraps new data keys
	Fingerprint bool // the fingerprint key is derived from it: it is never dropped
	InKeyring   bool // false: stored data keys name a KEK the keyring lacks
}

// Referenced reports whether the KEK must stay in the keyring.
func (u KEKUse) Referenced() bool { return u.DEKs > 0 || u.Active || u.Fingerprint }

// KEKs reports every KEK of the keyring and every KEK a stored data key
// names, in id order, with what references it: a KEK that is not
// Referenced can be dropped from the keyring (once every process has a
// keyring in which another is active).
func (v *Vault) KEKs(ctx context.Context) ([]KEKUse, error) {
	const op = "vault.keks"
	uses := map[string]*KEKUse{}
	use := func(id string) *KEKUse {
		u := uses[id]
		if u == nil {
			u = &KEKUse{ID: id, InKeyring: v.cfg.Keyring.Has(id)}
			uses[id] = u
		}
		return u
	}
	for _, id := range v.cfg.Keyring.IDs() {
		use(id)
	}
	use(v.cfg.Keyring.Active()).Active = true
	use(v.cfg.Keyring.FingerprintID()).Fingerprint = true
	after := ""
	for {
		batch, err := v.store.Keys(ctx, after, MaxKeysPage)
		if err != nil {
			return nil, errs.E(op, err)
		}
		for _, wk := range batch {
			use(wk.KEK).DEKs++
			after = wk.ID
		}
		if len(batch) < MaxKeysPage {
			break
		}
	}
	out := make([]KEKUse, 0, len(uses))
	for _, u := range uses {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b KEKUse) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

var _ payment.Vault = (*Vault)(nil)
