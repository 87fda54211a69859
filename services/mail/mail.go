// Package mail is the domain of the platform's outgoing e-mail: what a
// valid Message is (Validate), how it gets its Message-ID and Date
// (Prepare), and the Mailer interface that adapters implement. It imports
// no SMTP code.
//
// The adapters: services/mail/smtp hands messages to an SMTP server
// (production); services/mail/dir writes each one as an .eml file into a
// directory (for `ticketing dev`, where a page can show them). Both render
// messages with services/mail/eml and pass the same contract suite,
// services/mail/mailtest. Nothing in the binary sends mail yet: the account
// features (e-mail verification, password reset, order confirmations) will.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Limits checked by Validate.
const (
	MaxRecipients     = 50      // addresses in To
	MaxAddressLen     = 254     // the address proper (RFC 5321 path limit)
	MaxDisplayNameLen = 100     // characters of an address's display name
	MaxSubjectLen     = 250     // bytes
	MaxBodyLen        = 1 << 20 // bytes of Text and HTML together
	MaxIDLen          = 250     // bytes of a Message-ID, without the angle brackets
)

// Reasons refining errs.Invalid and errs.TooLarge from Validate.
const (
	ReasonBadAddress    = "bad_address"
	ReasonHeaderControl = "header_control_character" // CR, LF or another control character in a header field
)

// Message is one e-mail to send. Addresses are RFC 5322 mailboxes,
// "ada@example.com" or "Ada Lovelace <ada@example.com>"; the address proper
// must be ASCII (internationalized addresses need SMTPUTF8, which the mail
// path does not promise), the display name may be any text. Subject, Text
// and HTML are UTF-8; the renderer encodes them as MIME requires.
type Message struct {
	// ID is the Message-ID without angle brackets ("…@example.com").
	// Prepare sets a random one when it is empty; callers that log or
	// thread the message set their own (NewID).
	ID string
	// Date is the Date header; Prepare sets the current time when zero.
	Date    time.Time
	From    string   // exactly one mailbox
	To      []string // 1 to MaxRecipients mailboxes
	Subject string   // one line, may be empty
	Text    string   // the plain-text body; required
	HTML    string   // optional HTML alternative of Text
}

// Mailer sends messages. Implementations are safe for concurrent use.
type Mailer interface {
	// Send prepares m (Prepare) and delivers it: hands it to the mail
	// server, or stores it. An invalid message is refused with the error of
	// Validate (errs.Invalid or errs.TooLarge) and nothing is sent. A
	// context that ends first abandons the call with an error that wraps
	// ctx.Err(); a message abandoned midway may or may not have been
	// delivered. A server that cannot take the message now is
	// errs.Unavailable (retry later).
	Send(ctx context.Context, m Message) error
}

const op = "mail.message"

var (
	// dot-atom local part and a host name: no quoting, no spaces, no
	// domain literals. It is the form the platform's own addresses have
	// (services/identity) and it needs no escaping anywhere.
	addrPattern = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	// A Message-ID is id-left "@" id-right in dot-atom form.
	idPattern = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_` + "`" + `{|}~.-]+@[A-Za-z0-9.-]+$`)
)

// ParseAddress parses one mailbox as Validate accepts it and returns its
// display name and address. The address is returned as written (domain
// case included).
func ParseAddress(s string) (*mail.Address, error) {
	if hasControl(s) {
		return nil, errs.E(op, errs.Invalid, "address contains a control character (CR, LF, …)").WithReason(ReasonHeaderControl)
	}
	if !utf8.ValidString(s) {
		return nil, errs.E(op, errs.Invalid, "address is not valid UTF-8").WithReason(ReasonBadAddress)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, errs.Errorf(op, errs.Invalid, "address %q is not one mailbox such as ada@example.com or \"Ada\" <ada@example.com>", clip(s)).WithReason(ReasonBadAddress)
	}
	if len(a.Address) > MaxAddressLen {
		return nil, errs.Errorf(op, errs.Invalid, "address is longer than %d bytes", MaxAddressLen).WithReason(ReasonBadAddress)
	}
	if !addrPattern.MatchString(a.Address) {
		return nil, errs.Errorf(op, errs.Invalid, "address %q must be ASCII name@host, without quoting or spaces", clip(a.Address)).WithReason(ReasonBadAddress)
	}
	if utf8.RuneCountInString(a.Name) > MaxDisplayNameLen {
		return nil, errs.Errorf(op, errs.Invalid, "display name is longer than %d characters", MaxDisplayNameLen).WithReason(ReasonBadAddress)
	}
	if hasControl(a.Name) {
		return nil, errs.E(op, errs.Invalid, "display name contains a control character").WithReason(ReasonHeaderControl)
	}
	return a, nil
}

// FormatAddress is the inverse of ParseAddress: the address alone when
// the name is empty, else the name quoted ("Ada \"A\" L." <ada@…>), UTF-8
// left as it is (this is the form of Message fields, not of a header: the
// renderer encodes it).
func FormatAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range a.Name {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteString(`" <`)
	b.WriteString(a.Address)
	b.WriteByte('>')
	return b.String()
}

// Validate reports whether m may be sent: From and every To one mailbox
// (ParseAddress), at least one and at most MaxRecipients recipients, no
// control character (CR and LF above all: header injection) in the
// subject, addresses or ID, a Text body, valid UTF-8 everywhere, no NUL in
// the bodies, and the size limits. Errors are errs.Invalid, or
// errs.TooLarge for the body and recipient limits.
func (m Message) Validate() error {
	if _, err := ParseAddress(m.From); err != nil {
		return field("from", err)
	}
	if len(m.To) == 0 {
		return errs.E(op, errs.Invalid, "at least one recipient is required")
	}
	if len(m.To) > MaxRecipients {
		return errs.Errorf(op, errs.TooLarge, "%d recipients, at most %d are allowed", len(m.To), MaxRecipients)
	}
	for i, to := range m.To {
		if _, err := ParseAddress(to); err != nil {
			return field("to["+strconv.Itoa(i)+"]", err)
		}
	}
	if hasControl(m.Subject) {
		return errs.E(op, errs.Invalid, "subject contains a control character (CR, LF, …)").WithReason(ReasonHeaderControl)
	}
	if !utf8.ValidString(m.Subject) {
		return errs.E(op, errs.Invalid, "subject is not valid UTF-8")
	}
	if len(m.Subject) > MaxSubjectLen {
		return errs.Errorf(op, errs.Invalid, "subject is longer than %d bytes", MaxSubjectLen)
	}
	if m.ID != "" {
		if len(m.ID) > MaxIDLen {
			return errs.Errorf(op, errs.Invalid, "message id is longer than %d bytes", MaxIDLen)
		}
		if hasControl(m.ID) {
			return errs.E(op, errs.Invalid, "message id contains a control character").WithReason(ReasonHeaderControl)
		}
		if !idPattern.MatchString(m.ID) {
			return errs.E(op, errs.Invalid, "message id must be left@right in ASCII, without angle brackets or spaces")
		}
	}
	if strings.TrimSpace(m.Text) == "" {
		return errs.E(op, errs.Invalid, "a text body is required")
	}
	if len(m.Text)+len(m.HTML) > MaxBodyLen {
		return errs.Errorf(op, errs.TooLarge, "text and HTML bodies are %d bytes together, at most %d are allowed", len(m.Text)+len(m.HTML), MaxBodyLen)
	}
	for _, body := range []struct{ name, s string }{{"text", m.Text}, {"html", m.HTML}} {
		if !utf8.ValidString(body.s) {
			return errs.E(op, errs.Invalid, body.name+" body is not valid UTF-8")
		}
		if strings.IndexByte(body.s, 0) >= 0 {
			return errs.E(op, errs.Invalid, body.name+" body contains a NUL byte")
		}
	}
	return nil
}

// Prepare validates m and returns a copy ready to render: ID set (NewID,
// with the domain of From) when empty, Date set to now when zero and
// truncated to seconds (the precision of the Date header), addresses in
// the form of FormatAddress, the subject
// trimmed of surrounding white space and the bodies' line ends made LF (as
// a reader of the message sees them).
func (m Message) Prepare(now time.Time) (Message, error) {
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	from, _ := ParseAddress(m.From)
	m.From = FormatAddress(from)
	to := make([]string, len(m.To))
	for i, s := range m.To {
		a, _ := ParseAddress(s)
		to[i] = FormatAddress(a)
	}
	m.To = to
	m.Subject = strings.TrimSpace(m.Subject)
	m.Text, m.HTML = NormalizeNewlines(m.Text), NormalizeNewlines(m.HTML)
	if m.ID == "" {
		m.ID = NewID(from.Address[strings.LastIndexByte(from.Address, '@')+1:])
	}
	if m.Date.IsZero() {
		m.Date = now
	}
	m.Date = m.Date.Truncate(time.Second)
	return m, nil
}

// NormalizeNewlines turns CRLF and lone CR into LF.
func NormalizeNewlines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// NewID returns a random Message-ID (without angle brackets) at domain:
// 26 hex digits (104 bits), "@", domain.
func NewID(domain string) string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "@" + domain
}

// Sender returns the address proper of From (the SMTP envelope sender);
// m must be valid.
func (m Message) Sender() string {
	a, err := ParseAddress(m.From)
	if err != nil {
		return ""
	}
	return a.Address
}

// Recipients returns the addresses proper of To (the SMTP envelope
// recipients); m must be valid.
func (m Message) Recipients() []string {
	out := make([]string, 0, len(m.To))
	for _, to := range m.To {
		if a, err := ParseAddress(to); err == nil {
			out = append(out, a.Address)
		}
	}
	return out
}

// hasControl reports a C0 or C1 control character or DEL; in header fields
// these are refused, CR and LF above all (header injection).
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// field prefixes the message of ParseAddress's error with the field name.
func field(name string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		c := *e
		c.Msg = name + ": " + c.Msg
		return &c
	}
	return err
}
