package cloudevents

import (
	"encoding/json"
	"errors"
	"fmt"
)

// BatchContentType is the content type of a batch of events: a JSON array of
// structured-mode events (the CloudEvents JSON batch format). A producer
// that emits many events at once (an inventory owner relaying a group
// commit) sends one message per batch; the Kafka bridge splits it into one
// record per event.
const BatchContentType = "application/cloudevents-batch+json"

// Attributes are an event's context attributes as its JSON writes them
// (time as the string it is), decoded. An attribute that is absent, or not a
// string, is empty. A value without escapes is a slice of the batch.
type Attributes struct {
	SpecVersion, ID, Source, Type, Subject, Time, DataContentType, PartitionKey []byte
	TraceParent                                                                 []byte // the distributed-tracing extension
}

// Element is one event of a batch: its bytes (a slice of the batch) and its
// attributes.
type Element struct {
	Raw   []byte
	Attrs Attributes
}

// SplitBatch splits a batch into its events. It accepts exactly the JSON
// arrays (whitespace around and between values allowed) whose elements are
// all objects, and refuses anything else, whole: a batch is never half
// split. It scans the batch once, without building its values.
func SplitBatch(body []byte) ([]Element, error) {
	s := scanner{b: body, depth: 1}
	s.ws()
	if !s.byte('[') {
		return nil, s.fail("a batch must be a JSON array")
	}
	var out []Element
	s.ws()
	if s.byte(']') {
		return out, s.end()
	}
	for {
		s.ws()
		start := s.i
		if s.peek() != '{' {
			return nil, s.fail("every element of a batch must be an object")
		}
		var a Attributes
		if err := s.object(&a); err != nil {
			return nil, err
		}
		out = append(out, Element{Raw: body[start:s.i:s.i], Attrs: a})
		s.ws()
		if s.byte(']') {
			return out, s.end()
		}
		if !s.byte(',') {
			return nil, s.fail("expected , or ] after an element")
		}
	}
}

// scanner walks JSON text, checking it as encoding/json's scanner does
// (nesting included: at most maxDepth arrays and objects deep).
type scanner struct {
	b     []byte
	i     int
	depth int
}

const maxDepth = 10000 // encoding/json's limit

func (s *scanner) enter() error {
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deep")
	}
	return nil
}

var errBatch = errors.New("cloudevents: malformed batch")

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errBatch, what, s.i)
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.fail("text after the batch")
	}
	return nil
}

// object scans an object; with a non-nil a, it notes the attributes among
// its members (the last of a repeated name wins, as in encoding/json).
func (s *scanner) object(a *Attributes) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	type span struct {
		dst    *[]byte
		i, j   int // the quoted value, or i == j: not a string
		simple bool
	}
	var spans [9]span
	n := 0
	s.i++ // '{'
	s.ws()
	if s.byte('}') {
		return nil
	}
	for {
		s.ws()
		kStart := s.i
		simpleKey, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if !s.byte(':') {
			return s.fail("expected : after an object key")
		}
		s.ws()
		vStart := s.i
		isStr := s.peek() == '"'
		simpleVal := false
		if isStr {
			simpleVal, err = s.str()
		} else {
			err = s.value()
		}
		if err != nil {
			return err
		}
		if a != nil {
			if dst := a.field(s.b[kStart:vStart], simpleKey); dst != nil {
				sp := span{dst: dst, i: vStart, j: vStart, simple: simpleVal}
				if isStr {
					sp.j = s.i
				}
				k := 0 // a repeated attribute replaces its earlier value
				for k < n && spans[k].dst != dst {
					k++
				}
				spans[k] = sp // k < len(spans): there are as many attributes
				n = max(n, k+1)
			}
		}
		s.ws()
		if s.byte('}') {
			break
		}
		if !s.byte(',') {
			return s.fail("expected , or } in an object")
		}
	}
	for _, sp := range spans[:n] {
		switch {
		case sp.i == sp.j:
			*sp.dst = nil
		case sp.simple:
			*sp.dst = s.b[sp.i+1 : sp.j-1 : sp.j-1]
		default:
			*sp.dst = []byte(unquote(s.b[sp.i:sp.j], false))
		}
	}
	return nil
}

// field is where the attribute a key names goes, or nil. key is the quoted
// name followed by its colon and any spaces.
func (a *Attributes) field(key []byte, simple bool) *[]byte {
	end := len(key) - 1
	for end > 0 && key[end] != '"' {
		end--
	}
	name := key[1:end]
	if !simple {
		name = []byte(unquote(key[:end+1], false))
	}
	switch string(name) {
	case "specversion":
		return &a.SpecVersion
	case "id":
		return &a.ID
	case "source":
		return &a.Source
	case "type":
		return &a.Type
	case "subject":
		return &a.Subject
	case "time":
		return &a.Time
	case "datacontenttype":
		return &a.DataContentType
	case "partitionkey":
		return &a.PartitionKey
	case "traceparent":
		return &a.TraceParent
	}
	return nil
}

// unquote decodes a scanned JSON string. A simple one (printable ASCII, no
// escapes) is its bytes; any other goes through encoding/json, which also
// replaces invalid UTF-8 as it always does.
func unquote(q []byte, simple bool) string {
	if simple {
		return string(q[1 : len(q)-1])
	}
	var v string
	_ = json.Unmarshal(q, &v) // scanned already: cannot fail
	return v
}

// str scans a string; simple reports that it has no escapes and only ASCII.
func (s *scanner) str() (simple bool, err error) {
	if !s.byte('"') {
		return false, s.fail("expected a string")
	}
	simple = true
	b, i := s.b, s.i
	for i < len(b) {
		// The common run: printable ASCII other than the quote and backslash.
		if plain[b[i]] {
			i++
			continue
		}
		s.i = i
		c := b[i]
		switch {
		case c == '"':
			s.i++
			return simple, nil
		case c < 0x20:
			return false, s.fail("control character in a string")
		case c == '\\':
			simple = false
			s.i++
			if s.i >= len(s.b) {
				return false, s.fail("unterminated escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for k := 0; k < 4; k++ {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return false, s.fail("bad \\u escape")
					}
					s.i++
				}
			default:
				return false, s.fail("bad escape")
			}
		default: // c >= 0x80
			simple = false
			s.i++
		}
		i = s.i
	}
	s.i = i
	return false, s.fail("unterminated string")
}

// plain marks the bytes a string's common run is made of: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// value scans any JSON value.
func (s *scanner) value() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(nil)
	case c == '[':
		if err := s.enter(); err != nil {
			return err
		}
		defer func() { s.depth-- }()
		s.i++
		s.ws()
		if s.byte(']') {
			return nil
		}
		for {
			s.ws()
			if err := s.value(); err != nil {
				return err
			}
			s.ws()
			if s.byte(']') {
				return nil
			}
			if !s.byte(',') {
				return s.fail("expected , or ] in an array")
			}
		}
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return s.fail("expected a value")
	}
}

// number scans a JSON number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *scanner) number() error {
	s.byte('-')
	switch {
	case s.byte('0'):
	case '1' <= s.peek() && s.peek() <= '9':
		s.digits()
	default:
		return s.fail("bad number")
	}
	if s.byte('.') {
		if s.digits() == 0 {
			return s.fail("bad fraction")
		}
	}
	if s.byte('e') || s.byte('E') {
		if !s.byte('+') {
			s.byte('-')
		}
		if s.digits() == 0 {
			return s.fail("bad exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
