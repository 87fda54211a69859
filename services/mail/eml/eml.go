// Package eml converts between mail.Message and RFC 5322 text (what an
// .eml file holds and what SMTP's DATA carries). Build and Write render a
// message with github.com/wneessen/go-mail's message builder (not its SMTP
// client): UTF-8, quoted-printable bodies, encoded words in the headers,
// multipart/alternative when there is an HTML body. services/mail/smtp
// sends what Build returns, and services/mail/dir stores what Write writes,
// so an .eml file of `ticketing dev` is what production would have sent.
//
// Parse reads such text back (services/mail/dir's List and Read). It
// takes what Write produces and the common variations of it (base64 or
// 7/8bit bodies, nested multiparts, LF line ends), refuses the rest, and
// returns only messages that pass Validate. It is fuzzed (FuzzParse).
package eml

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
)

// MaxSize is the largest text Parse reads. Write's output of the largest
// valid message (mail.MaxBodyLen of bodies, quoted-printable) is below it.
const MaxSize = 8 << 20

// maxParts and maxDepth bound the MIME tree Parse walks.
const (
	maxParts = 16
	maxDepth = 3
)

// Build returns the go-mail message for m, which must be prepared
// (mail.Message.Prepare: valid, with ID and Date).
func Build(m mail.Message) (*gomail.Msg, error) {
	const op = "mail.eml.build"
	if m.ID == "" || m.Date.IsZero() {
		return nil, errs.E(op, errs.Invalid, "the message is not prepared (no ID or Date)")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	from, _ := mail.ParseAddress(m.From)
	msg.FromMailAddress(from)
	to := make([]*netmail.Address, len(m.To))
	for i, s := range m.To {
		to[i], _ = mail.ParseAddress(s)
	}
	msg.ToMailAddress(to...)
	if strings.Contains(m.Subject, "=?") {
		// Text that looks like an encoded word would be decoded by the
		// reader; go-mail leaves printable ASCII as it is, so encode it here.
		msg.SetGenHeaderPreformatted(gomail.HeaderSubject, encodeWords(m.Subject))
	} else {
		msg.Subject(m.Subject)
	}
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDateWithValue(m.Date)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// Write writes m, which must be prepared, as RFC 5322 text with CRLF line
// ends.
func Write(w io.Writer, m mail.Message) error {
	msg, err := Build(m)
	if err != nil {
		return err
	}
	if _, err := msg.WriteTo(w); err != nil {
		return errs.E("mail.eml.write", err)
	}
	return nil
}

// Bytes is Write into a new slice.
func Bytes(m mail.Message) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Parse reads an RFC 5322 message into a mail.Message: From, To, Subject,
// Message-ID and Date from the header (encoded words decoded), Text from
// the first text/plain part and HTML from the first text/html one (line
// ends as LF). The message must pass Validate and carry a Message-ID and
// a Date; anything else, or text over MaxSize, is errs.Invalid (or
// errs.TooLarge).
func Parse(raw []byte) (mail.Message, error) {
	const op = "mail.eml.parse"
	if len(raw) > MaxSize {
		return mail.Message{}, errs.Errorf(op, errs.TooLarge, "message is %d bytes, at most %d are read", len(raw), MaxSize)
	}
	nm, err := netmail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return mail.Message{}, errs.E(op, errs.Invalid, "not an RFC 5322 message", err)
	}
	var m mail.Message
	h := nm.Header
	for _, name := range []string{"From", "To", "Subject", "Message-Id", "Date"} {
		if len(h[name]) > 1 {
			return mail.Message{}, errs.Errorf(op, errs.Invalid, "%s appears %d times", name, len(h[name]))
		}
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 {
		return mail.Message{}, errs.E(op, errs.Invalid, "From is not one mailbox")
	}
	m.From = mail.FormatAddress(from[0])
	to, err := h.AddressList("To")
	if err != nil {
		return mail.Message{}, errs.E(op, errs.Invalid, "To is not a list of mailboxes", err)
	}
	for _, a := range to {
		m.To = append(m.To, mail.FormatAddress(a))
	}
	dec := mime.WordDecoder{CharsetReader: noCharsets}
	if m.Subject, err = dec.DecodeHeader(h.Get("Subject")); err != nil {
		return mail.Message{}, errs.E(op, errs.Invalid, "Subject cannot be decoded", err)
	}
	m.Subject = strings.TrimSpace(m.Subject)
	id := strings.TrimSpace(h.Get("Message-Id"))
	if len(id) < 2 || id[0] != '<' || id[len(id)-1] != '>' {
		return mail.Message{}, errs.E(op, errs.Invalid, "Message-ID is missing or not <left@right>")
	}
	m.ID = id[1 : len(id)-1]
	if m.ID == "" {
		return mail.Message{}, errs.E(op, errs.Invalid, "Message-ID is empty")
	}
	if m.Date, err = h.Date(); err != nil {
		return mail.Message{}, errs.E(op, errs.Invalid, "Date is missing or malformed", err)
	}
	ctype := h.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain; charset=us-ascii"
	}
	b := bodies{}
	if err := b.walk(ctype, h.Get("Content-Transfer-Encoding"), nm.Body, 0); err != nil {
		return mail.Message{}, errs.E(op, errs.Invalid, err.Error())
	}
	if !b.haveText {
		return mail.Message{}, errs.E(op, errs.Invalid, "no text/plain part")
	}
	m.Text, m.HTML = b.text, b.html
	if err := m.Validate(); err != nil {
		return mail.Message{}, err
	}
	// The Date header has seconds; keep its zone's offset.
	m.Date = m.Date.Truncate(time.Second)
	return m, nil
}

// bodies collects the first text/plain and text/html parts of a MIME tree.
type bodies struct {
	text, html         string
	haveText, haveHTML bool
	parts              int
}

func (b *bodies) walk(ctype, cte string, body io.Reader, depth int) error {
	b.parts++
	if b.parts > maxParts {
		return fmt.Errorf("more than %d MIME parts", maxParts)
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("Content-Type %q: %v", clip(ctype), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth {
			return fmt.Errorf("multiparts nested deeper than %d", maxDepth)
		}
		if enc := strings.ToLower(strings.TrimSpace(cte)); enc != "" && enc != "7bit" && enc != "8bit" && enc != "binary" {
			return fmt.Errorf("multipart with Content-Transfer-Encoding %q", clip(cte))
		}
		boundary := params["boundary"]
		if boundary == "" {
			return errors.New("multipart without a boundary")
		}
		r := multipart.NewReader(body, boundary)
		for {
			p, err := r.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %v", err)
			}
			pt := p.Header.Get("Content-Type")
			if pt == "" {
				pt = "text/plain; charset=us-ascii"
			}
			if err := b.walk(pt, p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	if mt != "text/plain" && mt != "text/html" {
		return nil // attachments and the like: not part of a mail.Message
	}
	if (mt == "text/plain" && b.haveText) || (mt == "text/html" && b.haveHTML) {
		return nil
	}
	switch cs := strings.ToLower(params["charset"]); cs {
	case "", "utf-8", "us-ascii":
	default:
		return fmt.Errorf("charset %q (only UTF-8 and US-ASCII are read)", clip(cs))
	}
	var r io.Reader
	switch enc := strings.ToLower(strings.TrimSpace(cte)); enc {
	case "", "7bit", "8bit", "binary":
		r = body
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	default:
		return fmt.Errorf("Content-Transfer-Encoding %q", clip(cte))
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return fmt.Errorf("%s body: %v", mt, err)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%s body is not UTF-8", mt)
	}
	s := mail.NormalizeNewlines(string(data))
	if mt == "text/plain" {
		b.text, b.haveText = s, true
	} else {
		b.html, b.haveHTML = s, true
	}
	return nil
}

// encodeWords encodes s as base64 encoded words (RFC 2047) of at most 45
// bytes of text each, split between runes, one a folded line.
func encodeWords(s string) string {
	var words []string
	for s != "" {
		n := min(len(s), 45)
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?UTF-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

// noCharsets refuses encoded words in charsets other than the ones
// mime.WordDecoder knows (UTF-8, US-ASCII, ISO-8859-1).
func noCharsets(charset string, _ io.Reader) (io.Reader, error) {
	return nil, fmt.Errorf("charset %q", clip(charset))
}

func clip(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
