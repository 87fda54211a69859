package barcode

import "github.com/ticketing/ticketing/internal/errs"

// Reasons, the errs.Error Reason of every refusal. Stable: scanners and
// metrics use them.
const (
	ReasonMalformed         = "malformed"           // Invalid: not a barcode of this format
	ReasonUnknownKey        = "unknown_key"         // Unauthorized: no key of that id for the event, or it is retired
	ReasonBadSignature      = "bad_signature"       // Unauthorized: the signature does not verify
	ReasonWrongEvent        = "wrong_event"         // Forbidden: a genuine barcode of another event
	ReasonNotYetValid       = "not_yet_valid"       // Forbidden: before ValidFrom
	ReasonExpired           = "expired"             // Gone: at or after ValidUntil
	ReasonRevoked           = "revoked"             // Forbidden: on the revocation list
	ReasonStaleCode         = "stale_code"          // Unauthorized: the code is not of the current step or one either side
	ReasonPrintedNotAllowed = "printed_not_allowed" // Forbidden: a printed barcode, and the verifier does not allow them
	ReasonCodeMissing       = "code_missing"        // Unauthorized: a barcode for a phone shown without its code
)

const (
	opEncode = "barcode.encode"
	opDecode = "barcode.decode"
	opVerify = "barcode.verify"
)

// fault is why a payload or a text is malformed.
type fault uint8

const (
	okay fault = iota
	truncated
	badVersion
	badKeyID
	badTicketID
	badEventID
	badPlaceKind
	badPlace
	badHolder
	badTimes
	badFlags
	nonCanonical
	trailing
	tooLong
	badBase64
	badCode
	printedCode
	nFaults
)

var faultMsgs = [nFaults]string{
	truncated:    "barcode truncated",
	badVersion:   "barcode of an unknown format version",
	badKeyID:     "key id must be 1-16 printable ASCII bytes",
	badTicketID:  "ticket id must be 1-128 bytes of text",
	badEventID:   "event id must be 1-128 bytes of text",
	badPlaceKind: "place kind must be seat or general admission",
	badPlace:     "place must be 1-128 bytes of text",
	badHolder:    "holder must be 1-128 bytes of text",
	badTimes:     "validity must be from a time at or after 1970 to a later one before the year 10000",
	badFlags:     "barcode has unknown flags",
	nonCanonical: "barcode has a number not in its shortest form",
	trailing:     "barcode has trailing bytes",
	tooLong:      "barcode text too long",
	badBase64:    "barcode text is not unpadded base64url",
	badCode:      "rotating code must be 8 digits",
	printedCode:  "printed barcode with a rotating code",
}

// Malformed inputs are refused with preallocated errors: a flood of
// garbage costs no allocation.
var encodeErrs, decodeErrs = faultErrs(opEncode), faultErrs(opDecode)

func faultErrs(op string) (e [nFaults]*errs.Error) {
	for f := truncated; f < nFaults; f++ {
		e[f] = refusal(op, errs.Invalid, ReasonMalformed, faultMsgs[f])
	}
	return e
}

var (
	errUnknownKey        = refusal(opVerify, errs.Unauthorized, ReasonUnknownKey, "barcode signed with an unknown or retired key")
	errBadSignature      = refusal(opVerify, errs.Unauthorized, ReasonBadSignature, "barcode signature invalid")
	errWrongEvent        = refusal(opVerify, errs.Forbidden, ReasonWrongEvent, "barcode is for another event")
	errNotYetValid       = refusal(opVerify, errs.Forbidden, ReasonNotYetValid, "barcode not yet valid")
	errExpired           = refusal(opVerify, errs.Gone, ReasonExpired, "barcode expired")
	errRevoked           = refusal(opVerify, errs.Forbidden, ReasonRevoked, "barcode revoked")
	errStaleCode         = refusal(opVerify, errs.Unauthorized, ReasonStaleCode, "rotating code stale or wrong")
	errPrintedNotAllowed = refusal(opVerify, errs.Forbidden, ReasonPrintedNotAllowed, "printed barcodes are not accepted here")
	errCodeMissing       = refusal(opVerify, errs.Unauthorized, ReasonCodeMissing, "barcode shown without its rotating code")
	errNoRotationSecret  = errs.E(opVerify, errs.Other, "verifier has no rotation secret of at least 16 bytes")
)

func refusal(op string, k errs.Kind, reason, msg string) *errs.Error {
	return errs.E(op, k, msg).WithReason(reason)
}
