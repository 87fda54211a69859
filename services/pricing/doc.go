// Package pricing prices carts: the step of the purchase flow between a
// hold and an order, which fixes what the order will charge. It is the
// domain only, free of storage and transport imports:
//
//   - Money, integer minor units and an ISO 4217 code, never a float;
//   - Rules, the versioned price list of one event (zone prices, fees,
//     tax, add-ons, the public on-sale, dynamic pricing), and Voucher,
//     a discount or presale code, each with Validate and Normalize;
//   - Price, a pure function from a price list, a cart, a voucher and
//     the time to a Quote of lines whose amounts sum to its total
//     exactly (its documentation states the rounding);
//   - Repriced, the pure step of dynamic pricing: sell-through and
//     demand thresholds give a multiplier of each zone's base price,
//     bounded by a floor, a ceiling and a largest step;
//   - Store, kept by services/pricing/natskv (JetStream key-value, for
//     `ticketing dev`) and services/pricing/postgres (production), both
//     held to the contract suite services/pricing/pricingtest;
//   - Service, which prices and stores quotes (Quote) and reprices
//     events (Reprice), publishing each price change as a
//     "ticketing.pricing.changed" event through a Publisher
//     (services/pricing/natsevents puts them on the EVENTS stream);
//   - DecodeRules, DecodeVoucher and DecodeCart, the decoders of the
//     documents operators and buyers send, with size and list limits.
//
// A quote never changes once stored: repricing writes a new rules
// version, and quotes keep the version they were priced with
// (Quote.RulesVersion). Voucher limits are enforced when an order
// redeems the voucher (Store.Redeem), not when a quote is made: a quote
// with a voucher is an offer, and of concurrent orders with the last use
// only one gets it.
package pricing
