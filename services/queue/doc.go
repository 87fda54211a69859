// Package queue is the domain logic of an event's waiting room: a fair,
// verifiable order for the users who arrive before the sale, first come
// first served after it, admission decided from inventory and split across
// edges, and wait estimates. It imports no transport or storage: the edge
// (WebSocket, JSON status) and the core (controller service, NATS) wire it.
//
// # Tickets
//
// A user's place is a TicketID: 16 bytes derived from their session id,
//
//	ticket = HMAC-SHA256(ticket_key, "ticketing/queue/ticket/v1" || 0x00 || session)[:16]
//
// with a secret random per-event ticket key the core gives every edge
// (TicketFor). The id is unguessable, bound to the session, and stable, so
// rejoining with the same session keeps the place and the queue never
// stores the session. Ids do not depend on the edge: a session seen by two
// edges has one ticket, which the core's union counts once.
//
// # The draw
//
// Users who join before the on-sale time are in the pre-queue, in no
// particular order. Before the sale the core picks a seed (NewSeed, 32
// random bytes) and publishes its commitment, hex(SHA-256(seed))
// (Commitment). At the start every edge closes its pre-queue
// (Queue.ClosePreQueue) and sends its tickets to the core; the core draws
// over the union of all edges' pre-queues, and after the sale publishes the
// seed and the list of pre-queue tickets. Anyone can then check the draw:
//
//  1. SHA-256(seed), as 64 hex digits, equals the commitment published
//     before the sale (VerifyCommitment);
//  2. for every ticket t in the published list (its 16 bytes, from the 32
//     hex digits), key(t) = HMAC-SHA256(key = seed, message = t);
//  3. the order is the tickets sorted by key(t) ascending, comparing the 32
//     key bytes as an unsigned big-endian number (bytewise), equal keys
//     ordered by ticket bytes (Draw). Place 1 is admitted first.
//
// testdata/draw_vector.json is a worked example made by an independent
// implementation (Python hmac/hashlib) of exactly these steps.
//
// Why it is fair: HMAC-SHA256 under a key unknown when the tickets were
// issued is a pseudo-random function, so the keys are independent and
// uniform and sorting by them gives every ordering the same chance; the
// order does not depend on arrival time, on how the lists were merged, or
// on the edge. The commitment shows the seed was fixed before the pre-queue
// closed. What it cannot show on its own is that the operator, who knows
// the seed, did not choose ticket keys or insert tickets to favour someone;
// mixing a public randomness beacon value drawn after the close into the
// seed would close that gap.
//
// Because the sort key is per ticket, an edge's order is exactly the
// global order restricted to its own tickets: an edge needs only the seed
// (Queue.ApplyDraw, which checks it against the commitment), never the
// global list. Joins after the pre-queue closed go behind it, first come
// first served, and know their place at once.
//
// # The queue
//
// Queue holds one event's line at one edge: states pre_queue, queued,
// admitted and sold_out; Join (idempotent per session; JoinTicket is the
// same by ticket, for the edge's journal to replay), Status, Admit (the
// next n in order), MarkSoldOut (every waiting ticket reads sold_out at
// once, and Version changes so broadcasters push it), Resume (seats came
// back: everyone is in their old place). Time is a parameter, never read
// from the system clock.
//
// Memory per user is one TicketID in a slice (16 bytes) and one map entry
// from TicketID to a uint32 index (20 bytes of key and value plus the map's
// control bytes and free slots). Measured live heap
// (BenchmarkMemoryPerUser, runtime.MemStats after GC): about 44 bytes per
// user at 100,000 users and 61–62 at 1,000,000 (the map's table is a power
// of two, so its fill varies with the count), i.e. about 62 MB for the
// 1,000,000 users an edge must hold; admitted tickets stay, so a rejoin
// still reads admitted.
//
// # Admission control
//
// Decide is the core's controller, a pure function of inventory and queue
// lengths: it admits up to the target number of concurrent shoppers, no
// more than the seats left (plus holds about to expire) can serve, and
// splits the number across edges in proportion to their queue lengths by
// the largest remainder method (Split), never more than an edge has
// waiting. So every edge's line moves at the same rate relative to its
// length, and with the draw's random order a user's chance does not depend
// on the edge they joined. With no seats left and none about to return it
// admits 0 and says sold out. Decision.Reachable and EdgeAdmit.Reachable
// say how far down the line seats are likely to last; LikelySoldOut tells a
// user beyond it.
//
// # Wait estimates
//
// RateEstimator averages the admission rate over time (an exponentially
// weighted moving average with a half-life) and turns a position into a
// wait: position / rate.
package queue
