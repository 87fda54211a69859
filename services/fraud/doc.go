// Package fraud scores sign-ins, sign-ups and purchases for fraud and
// decides what to do with each: allow it, challenge it (a proof of work,
// or the account's second factor), send it down the slow lane, or deny it
// for a while. Its first job is to protect sign-in from credential
// stuffing without handing attackers a way to lock real users out.
//
// It is the domain only. Counts live behind the Counters interface
// (services/fraud/redis, shared by every process of a region;
// services/fraud/memory, in-process, for `ticketing dev`), both held to
// the contract suite services/fraud/fraudtest; decisions leave as domain
// events through a Publisher (services/fraud/natsevents: the EVENTS
// stream, and from there Kafka).
//
// # Use
//
// The sign-in handler builds Signals (ParseAddress for the client's
// address, ParseDevice for the device cookie, the account's age, failures
// and second factor from identity, the join guard's verdict), calls
// Engine.Decide before it checks the password, acts on the Decision, and
// afterwards calls Engine.RecordFailure or Engine.RecordSuccess. A client
// that comes back having solved the demanded challenge says so in
// Signals.Passed (the handler checks the solution first).
//
// # What is counted
//
// Every decision counts the attempt, per action, in a VelocityWindow for
// each dimension it has: the account, the address, its network (the /24
// of an IPv4 address, the /64 of an IPv6 one: IPv4Prefix, IPv6Prefix),
// the device and the card. Failed sign-ins (RecordFailure) are counted
// in a FailureWindow per account, address and network. A good sign-in
// (RecordSuccess) makes its device and its network known to the account
// for KnownWindow, and clears the account's failures and lockout. Keys
// hold keyed hashes of the values (Config.HashKey), never the values.
//
// # Rules
//
// The score (0-100) adds VelocityPoints for each dimension over its
// velocity limit, FreshPoints for an account younger than FreshAge,
// FailurePoints for each of the account's failed sign-ins since its last
// good one (up to MaxFailurePoints), SuspectPoints or LimitedPoints for
// the join guard's verdict, and takes off KnownDeviceCredit and
// KnownNetworkCredit. From ChallengeScore the outcome is a challenge,
// from SlowScore the slow lane, from DenyScore a denial.
//
// Sign-ins have hard rules too, which the score can only make more
// severe:
//
//   - An address with AddressFailureLimit failures in FailureWindow, or a
//     network with NetworkFailureLimit, is denied sign-ins to any
//     account: the stuffing source is shut out, not the accounts it
//     tries.
//   - An account with AccountChallengeFailures failures (in FailureWindow,
//     or since its last good sign-in) is challenged: with its second
//     factor if it has one, else with a proof of work. It is not locked.
//   - An account whose failures in FailureWindow reach AccountLockFailures
//     is locked for LockoutWindow (to twice that, see Counters): denied to
//     devices and networks it does not know. A lockout starts at most once
//     per LockoutCooldown, so an attacker who keeps failing gets the
//     owner locked out of new devices for one LockoutWindow, after which
//     they get challenges.
//   - A device or network the account signed in from before is exempt
//     from the address and lockout denials and is never denied nor slowed
//     on sign-in: at worst it is challenged. The owner's own device always
//     keeps a way in. (The device fingerprint must therefore be
//     unguessable: a random identifier the server issued.)
//
// A challenge the request has already passed (Signals.Passed) turns the
// outcome into an allow; a second factor satisfies a proof-of-work demand
// too. A denial's RetryAfter is when the state behind it surely clears
// if nothing more happens: an upper bound.
//
// Every threshold, weight, window and prefix length is a Config field.
//
// # Events
//
// Every decision is published as an Event of type TypeDecided, subject
// the account ("account:<id>") or else the network ("network:<prefix>"),
// with the outcome, challenge, score and reasons. Events carry no
// address (only its network, and a keyed hash when HashKey is set), no
// device fingerprint and no credential.
package fraud
