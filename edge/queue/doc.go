// Package queue is the edge's side of the waiting room: one Room per
// event whose queue is on, holding the event's services/queue.Queue at this
// edge, the core's decisions applied to it, the admission tokens of its
// admitted users and the WebSockets of its waiting users.
//
// # A room
//
// A room opens on first use (Manager.Room): it asks the core for the
// event's setup (queue.config: ticket key, seed commitment, on-sale time,
// the seed once revealed, sold out) and follows the core's decisions
// (queue.edge.<event>, in order, stale sequence numbers ignored):
//
//   - when a decision (or the setup) carries the seed, the pre-queue is
//     drawn with Queue.ApplyDraw, which checks the seed against the
//     commitment, and this edge's pre-queue tickets go to the core
//     (queue.prequeue, chunks of at most 10,000, retried until taken) for
//     the public draw record;
//   - sold_out marks the queue sold out (every waiting ticket reads
//     sold_out at once) and its end resumes it, places kept;
//   - this edge's share (Admit) lets the next users in line through with
//     Queue.Admit, and its Reachable says from which place on seats are
//     unlikely to last (likely_sold_out).
//
// Every ReportEvery (1 s) the room publishes its line on
// queue.report.<event>, which the core's controller splits admissions by.
// Wait estimates are the position over this edge's admission rate, a
// queue.RateEstimator fed by every decision after the start. An admitted
// user's token comes from the core (admission.issue, subject = the ticket
// in hex, never the session) on the first status that needs it and is kept
// per ticket until TokenRefreshBefore its expiry; one request at a time per
// ticket, and a failure is remembered for a second.
//
// # WebSockets with little memory per connection
//
// The WebSocket speaks the server's part of RFC 6455 itself (ws.go): the
// opening handshake, unmasked text frames out, and control frames in both
// directions; clients have nothing to say but ping, pong and close, and a
// frame above 1 KiB closes the socket. Fiber's websocket middleware
// (gofiber/contrib/websocket on fasthttp/websocket) keeps, for the whole
// life of a socket, the goroutine that runs its handler, fasthttp's request
// context and its 4 KiB read buffer (fasthttp's hijackConnHandler
// releases them only when the handler returns, which closes the socket),
// plus the websocket connection's own state: about 16 KiB per idle socket. Here the upgrade
// handler returns at once: fasthttp (with Server.KeepHijackedConns) frees
// its context and buffer, and the raw socket belongs to the room. An idle
// socket then costs no goroutine and no buffer:
//
//   - reading: on Linux, a few goroutines (Config.Readers) wait in
//     epoll_wait for every socket and read into one scratch buffer each; a
//     partial client frame (rare) is copied aside. A socket the edge
//     serves over TLS (wss://, the edge's HTTPTLS) is watched the same way
//     (the tls.Conn's own socket, armed once at a time) and, when it has
//     bytes, read through its tls.Conn by one of a pool of TLS readers (16
//     per epoll goroutine) with a short read deadline: crypto/tls keeps a
//     record that came in part across the timeout, the reader goes on to
//     other sockets, and a socket that keeps sending records in parts is
//     closed (tlsread_linux.go). Config.Reader "goroutine" (the only choice
//     elsewhere) gives every socket a blocked reader goroutine instead: its
//     stack (2 KiB, 4 KiB over TLS) and 0.7 KiB of heap more each;
//   - writing: no writer goroutine either; the room's broadcaster walks the
//     connection set (64 shards, copied shard by shard) with Pushers
//     workers, encodes each status into a worker's buffer without
//     reflection and writes it with a deadline (WriteTimeout); a socket that
//     cannot take it is closed. A round runs when the queue's Version moved
//     (admissions at most every MinPushInterval, the draw, sold out and
//     resume at once) and at least every UpdateEvery (5 s).
//
// Per-connection budget (amd64, estimated from the types; the queue's own
// cost per user is in services/queue's doc):
//
//	conn (socket, ticket, room, place in the set, write lock)     112 B
//	net.TCPConn + netFD + two *TCPAddr + RawConn                  ~330 B
//	runtime poll descriptor (not GC heap)                          ~250 B
//	slot in the room's shard and in the epoll table (with slack)    ~32 B
//	queue ticket + join record for the wait histogram               ~110 B
//	                                                              ≈ 0.85 KiB live
//
// and over TLS, what crypto/tls keeps for the life of the connection (a
// heap profile of 2,000 held sockets):
//
//	input buffers, grown to hold the client's hello (about 1.8 KiB
//	with a post-quantum key share) and never shrunk                ~3.5 KiB
//	AES-GCM state of both directions                               ~1.8 KiB
//	tls.Conn                                                       ~0.9 KiB
//	traffic and exporter secrets                                   ~0.2 KiB
//	                                                              ≈ 6.4 KiB more
//
// `go test -bench SocketMemory ./edge/queue/` measures the live heap per
// held socket (with the client's bare TCP connection, about 0.3 KiB, in
// the same process): 0.85 KiB plain and 7.4 KiB over TLS with the epoll
// reader; the goroutine reader adds its stack (2 KiB plain, 4 KiB over
// TLS). crypto/tls cannot give its buffers back on an idle connection
// (golang/go#43563, #81348); where the bytes per socket matter more than
// TLS at the edge, TLS ends at a load balancer in front of it.
//
// A process's resident memory carries the collector's headroom besides:
// servers run with GOGC 400 (internal/gctune), so the heap may grow to
// about five times the live heap between collections, and over TLS the
// handshakes of a rush of joins leave plenty of garbage to fill it.
// Measured with `ticketing bench queue` on this machine (2 cores; 18,000
// sockets held from another process, a push every 5 s), the edge's
// resident memory per socket: 4.8-5.1 KiB plain and 27-30 KiB over TLS at
// GOGC 400 (the goroutine reader: 33-34 KiB over TLS), 2.9 and 15 KiB at
// GOGC 100; the target is 10 KiB, and Fiber's websocket middleware with
// its defaults costs about 16 KiB per idle plaintext socket. At a million
// sockets on a 16 GiB host: about 0.85 GB live plain, 7.4 GB over TLS,
// under the soft memory limit (75% of the host's memory), which makes the
// collector give up the headroom when memory runs short; plus what the
// kernel keeps per idle TCP socket outside the process's resident memory
// (socket, file, epoll item: roughly 1-2 KiB, and buffers only while data
// is queued); the open-files limit has to be raised to match.
// The broadcaster then writes a million small frames every UpdateEvery
// (200,000 writes a second), which is why it is parallel and skips
// nothing but closed sockets.
//
// Reconnecting with the same session joins again, which is idempotent: the
// place is the ticket's, TicketFor(ticket key, session), not the socket's.
//
// # The journal
//
// A room's queue is in memory, so without more an edge that crashes or
// restarts at an on-sale loses its line. With Config.JournalDir (ticketing
// edge --queue-journal; ticketing dev uses <data>/edge-queue) each room
// appends its queue's changes to <dir>/<event>.journal: a header binding
// the file to the sale (a digest of the ticket key, on-sale time and
// commitment), then a record per new ticket (ticket, join time, whether it
// went to the pre-queue: 30 bytes), the draw's seed and every admission
// (the count actually admitted and its time), each with a CRC-32C
// (journal.go). A lock orders every change with its record. When the room
// opens again it replays the journal into the fresh queue
// (Queue.JoinTicket with the recorded times, ApplyDraw, Admit) before
// anything else, so every ticket has exactly its old state and place, then
// goes on appending; sold out and resume come from the core's config and
// decisions and are not journaled. A replay also resends the pre-queue,
// which the core takes as a repeat.
//
// Records are buffered and written to the file every 50 ms and fsync'd
// every second (and on Shutdown): a process crash (kill -9, panic) loses
// at most the last 50 ms of changes, a machine crash or power loss at most
// about the last second. What is lost: joins (those users join again, at
// the back) and admissions (those users wait again and are admitted
// anew; tokens already issued stay valid). A torn or corrupt tail is
// detected by its length or CRC and cut off, keeping every whole record
// before it. If the journal cannot be written the room logs an error and
// goes on in memory; if it cannot be replayed the room starts a fresh line
// without a journal.
//
// The journal grows with the queue (about 30 bytes a join; 60 MB for two
// million) and is only read when the room opens, which happens only for a
// queue-on event. Journals of past sales are ignored and left for the
// operator to remove; a later sale of the same event (another ticket key,
// on-sale time or commitment) sets the old file aside as
// <event>.journal.stale and starts a new one.
//
// # Other edge duties
//
// Manager.TicketFor and Manager.QueueOn serve the hold endpoint's
// admission check (Gate, with the admission.Verifier over the Keys the edge
// follows from the core). JetStreamEvents writes the domain events
// ticketing.queue.joined and ticketing.queue.admitted for the analytics
// funnel. Metrics: ticketing_queue_* (waiting, admitted, joins, admission
// rate, wait estimated at join and actual wait at admission, tokens
// fetched, sockets open, pushes sent and failed).
package queue
