// Package psp is the payment gateway simulator behind `ticketing psp`: a
// stateful HTTP server speaking the Stripe-like API of the checkout design
// (payment intents, refunds, a 3-D Secure challenge page, signed
// webhooks), for the payment service to be built and tested against
// without a real PSP, and for tests to break it on purpose.
//
// What holds:
//
//   - Durability. Every state change the server acknowledges (an intent
//     created, confirmed, captured, cancelled, refunded; the answer stored
//     under an idempotency key; a webhook event to deliver) is in the
//     append-only journal in Config.DataDir, fsynced, before the HTTP
//     answer is written and before any other request can see it.
//     Concurrent requests share one fsync (group commit). New replays the
//     journal, so a process killed with SIGKILL comes back with every
//     acknowledged record, once. A torn record at the journal's end (a
//     write the kernel never finished) is cut off at start.
//   - Idempotency, as Stripe has it: the first answer given under an
//     Idempotency-Key is stored (5xx included) and replayed to the same
//     request; the same key with other parameters is 400
//     idempotency_error; the same key while its first request runs is 409.
//     Requests refused before they began (unparseable form, missing
//     parameters, bad credentials) store nothing. Keys are kept
//     Config.IdempotencyTTL (24 h).
//   - Serial per intent. Operations on one intent (confirm, capture,
//     cancel, refund, the challenge's answer) run one at a time, each from
//     the durable state the previous one left; reads see only durable
//     state.
//   - Webhooks are delivered at least once to every endpoint configured
//     when the event happened (and still configured after a restart),
//     signed (Stripe-Signature t=…,v1=…) with
//     every secret of Config.WebhookSecrets, and retried with exponential
//     backoff until the endpoint answers 2xx or the event is older than
//     Webhook.MaxAge. Pending deliveries survive a restart. Order is not
//     guaranteed (as with Stripe), and deliberately broken by the faults.
//   - Faults (Faults) are chosen by a hash of the seed, the fault and the
//     request's idempotency key (or its operation and how many such
//     requests came before it), so a test that makes the same requests
//     meets the same faults. Card numbers choose the card's outcome (the
//     test cards of Stripe's documentation; see Cards).
//   - Card numbers never leave the request that carries them: the journal,
//     the answers, the events and the logs know only the last four
//     digits.
package psp
