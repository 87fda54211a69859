// Package payment is the payment service's domain: the PCI boundary. Card
// numbers reach only this service; it keeps them in its vault and sends
// them to the payment gateway (Gateway) on confirm; everything else sees
// a token, the brand, the last four digits and a fingerprint.
//
// A Card prints redacted everywhere (fmt, log/slog, encoding/json):
// nothing but its last four digits reaches a log or an error by mistake.
// The vault (services/payment/vault) seals cards and hands out tokens.
//
// The payments ledger (Ledger) records each order's payment: the gateway
// intent, where it stands (PaymentStatus), and the money that moved, as
// append-only entries (Entry: capture, refund, void) keyed by the gateway
// object's id, so that the same capture learnt from the return page and
// from a webhook, or from a webhook delivered twice, is recorded once.
// Payment.Apply keeps the invariants: at most one capture, refunds never
// beyond it, amounts positive, one currency. SeenEvent de-duplicates
// webhooks. services/payment/natskv (for `ticketing dev`) and
// services/payment/postgres (production, migrations component "payment")
// implement the Ledger; services/payment/paymenttest is the contract
// suite both pass.
package payment
