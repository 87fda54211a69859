// Package notification tells buyers what happened to their purchases:
// today the order confirmation, an e-mail with the order's tickets, sent
// when the order is fulfilled. It is the domain only: what a message says
// (Confirmation, rendered from templates in the recipient's language,
// English or German for now), the Ledger that makes a delivery happen
// once per (domain event, channel, recipient), and the Notifier that
// ties them to a mail.Mailer.
//
// Once: a delivery is keyed by Key, begun in the ledger before the mail
// goes out and finished after, so a redelivered event or a restarted
// notifier sends nothing for a finished delivery. The mail server is
// outside the platform: a notifier that dies after the server took a
// message and before its ledger write sends it again, with the same
// Message-ID (the key's), by which mail servers and clients drop the
// second copy.
package notification

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"

	"github.com/ticketing/ticketing/internal/errs"
)

// Ledger remembers deliveries, by key. Implementations are safe for
// concurrent use, also from several processes on one backing store.
type Ledger interface {
	// Begin records that the delivery key starts, unless it finished
	// before: done reports that it did (nothing is to be sent). A delivery
	// begun and not finished (its sender died) begins again. A bad key is
	// errs.Invalid.
	Begin(ctx context.Context, key string) (done bool, err error)
	// Finish records that the delivery key finished; again changes
	// nothing. A bad key is errs.Invalid.
	Finish(ctx context.Context, key string) error
}

var keyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidKey reports whether s may be a delivery key (Key's form).
func ValidKey(s string) bool { return keyPattern.MatchString(s) }

// Key is the delivery key of a domain event's message on a channel to a
// recipient: hex SHA-256 of the three.
func Key(eventID, channel, recipient string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + channel + "\x00" + recipient))
	return hex.EncodeToString(sum[:])
}

// BadKey is the error of a ledger given a malformed key.
func BadKey(op string) error {
	return errs.E(op, errs.Invalid, "a delivery key is 64 lower-case hex digits")
}
