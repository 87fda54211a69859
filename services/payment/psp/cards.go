package psp

import "time"

// CardOutcome is what confirming with a card does.
type CardOutcome int

const (
	// Approve authorizes (and with automatic capture captures) at once.
	Approve CardOutcome = iota
	// Decline refuses: the intent goes back to requires_payment_method.
	Decline
	// Challenge asks for 3-D Secure: completing the challenge approves.
	Challenge
	// ChallengeThenDecline asks for 3-D Secure: completing it declines.
	ChallengeThenDecline
)

// Card is a test card's behaviour.
type Card struct {
	Outcome CardOutcome
	// The decline, for Decline and ChallengeThenDecline.
	Code, DeclineCode, Message string
}

// Cards are the test cards (Stripe's numbers). Any other number that
// passes the Luhn check approves; one that does not is declined as
// incorrect_number.
var Cards = map[string]Card{
	"4242424242424242": {Outcome: Approve},
	"4000002760003184": {Outcome: Challenge},
	"4000000000003220": {Outcome: Challenge},
	"4000008400001629": {Outcome: ChallengeThenDecline, Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."},
	"4000000000000002": {Outcome: Decline, Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."},
	"4000000000009995": {Outcome: Decline, Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."},
	"4000000000000069": {Outcome: Decline, Code: "expired_card", DeclineCode: "expired_card", Message: "Your card has expired."},
	"4000000000000119": {Outcome: Decline, Code: "processing_error", DeclineCode: "processing_error", Message: "An error occurred while processing your card. Try again in a little bit."},
}

// authenticationFailed is the decline of a failed challenge.
var authenticationFailed = Card{Outcome: Decline, Code: "payment_intent_authentication_failure",
	Message: "The provided PaymentMethod has failed authentication. Provide a new payment method to attempt to fulfill this PaymentIntent again."}

// judge says what confirming with c does at now: the test card's
// behaviour, or the checks of number, expiry and CVC.
func judge(c *cardParams, now time.Time) Card {
	if card, ok := Cards[c.Number]; ok {
		return card
	}
	if !luhn(c.Number) {
		return Card{Outcome: Decline, Code: "incorrect_number", Message: "Your card number is incorrect."}
	}
	if y, m, _ := now.Date(); c.ExpYear < y || c.ExpYear == y && c.ExpMonth < int(m) {
		return Card{Outcome: Decline, Code: "expired_card", DeclineCode: "expired_card", Message: "Your card has expired."}
	}
	if n := len(c.CVC); n < 3 || n > 4 || !digits(c.CVC) {
		return Card{Outcome: Decline, Code: "incorrect_cvc", DeclineCode: "incorrect_cvc", Message: "Your card's security code is incorrect."}
	}
	return Card{Outcome: Approve}
}

// luhn checks a card number of 12 to 19 digits.
func luhn(n string) bool {
	if len(n) < 12 || len(n) > 19 || !digits(n) {
		return false
	}
	sum := 0
	for i := range len(n) {
		d := int(n[len(n)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
