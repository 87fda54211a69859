package orders

import "testing"

// An order's payment keeps the decline of its last attempt only: a
// success after a decline clears it, a repeated decline replaces it, a
// challenge keeps it (the buyer may still fail it).
func TestRecordKeepsTheLastDecline(t *testing.T) {
	declined := PaymentResult{Status: PaymentDeclined, IntentID: "pi_1", DeclineCode: "generic_decline", DeclineMessage: "Your card was declined."}
	for _, tc := range []struct {
		name          string
		then          PaymentResult
		status        string
		code, message string
	}{
		{"succeeded", PaymentResult{Status: PaymentSucceeded, IntentID: "pi_1", Captured: 500}, "succeeded", "", ""},
		{"declined again", PaymentResult{Status: PaymentDeclined, IntentID: "pi_1", DeclineCode: "insufficient_funds", DeclineMessage: "Your card has insufficient funds."},
			"failed", "insufficient_funds", "Your card has insufficient funds."},
		{"a challenge", PaymentResult{Status: PaymentRequiresAction, IntentID: "pi_1", RedirectURL: "https://bank.example/3ds"},
			"requires_action", "generic_decline", "Your card was declined."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Saga
			var o Order
			s.record(&o, declined)
			s.record(&o, tc.then)
			p := o.Payment
			if p.Status != tc.status || p.DeclineCode != tc.code || p.DeclineMessage != tc.message || p.IntentID != "pi_1" {
				t.Errorf("payment %+v", p)
			}
		})
	}
}
