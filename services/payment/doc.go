// Package payment is the payment service's domain: the PCI boundary. Card
// numbers reach only this service; it keeps them in its vault and sends
// them to the payment gateway (Gateway) on confirm; everything else sees
// a token, the brand, the last four digits and a fingerprint.
package payment
