package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/queue"
	"github.com/ticketing/ticketing/internal/errs"
)

// WaitingRoom is what the API needs of the edge's waiting rooms
// (*queue.Manager).
type WaitingRoom interface {
	QueueOn(eventID string) bool
	Joined(eventID, session string) bool
	Join(ctx context.Context, eventID, session string) (queue.Status, bool, error)
	Status(ctx context.Context, eventID, session string) (queue.Status, error)
	Draw(ctx context.Context, eventID string, offset, limit int) (queue.DrawRecord, error)
	JWKS(ctx context.Context) ([]byte, error)
	Upgrade(ctx *fasthttp.RequestCtx, eventID, session string) error
}

// JoinGuard applies the join limits (per client address and per session)
// and the proof-of-work challenge (*joinguard.Guard). Check refuses a join
// with an errs error: errs.TooMany (429) when a limit is reached, carrying
// the limiter's decision (joinguard.LimitOf: the RateLimit header fields
// are set from it), and errs.Forbidden (403) when a proof of work is
// needed, carrying a fresh challenge (joinguard.ChallengeOf: sent in the
// Queue-PoW-Challenge and Queue-PoW-Difficulty header fields).
type JoinGuard interface {
	Check(ctx context.Context, ip, session, eventID, powSolution string, now time.Time) error
	Challenge(ctx context.Context, ip, session, eventID string, now time.Time) (challenge string, difficulty int, err error)
	// Verdict is what the guard last found of joins from ip (limited,
	// suspect or ""), which sign-ins pass to the fraud engine.
	Verdict(ip string, now time.Time) string
}

// Limits of the waiting room's inputs.
const (
	sessionIDBytes        = 16
	maxPoWSolutionLen     = 512
	sessionCookieLifetime = 24 * time.Hour
)

// newSession is a fresh random session id.
func newSession() string {
	var b [sessionIDBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// session returns the request's waiting-room session, setting a new
// cookie when it has none (or a malformed one).
func (a *API) session(c *fiber.Ctx) string {
	if s, ok := existingSession(c); ok {
		return s
	}
	s := newSession()
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: s, Path: "/", HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
		Secure: c.Protocol() == "https", Expires: time.Now().Add(sessionCookieLifetime)})
	return s
}

// existingSession is the request's session without making one.
func existingSession(c *fiber.Ctx) (string, bool) {
	s := c.Cookies(SessionCookie)
	return s, validSession(s)
}

// queueEvent checks that the event exists and has a waiting room.
func (a *API) queueEvent(c *fiber.Ctx) (string, error) {
	e, _, err := a.event(c)
	if err != nil {
		return "", err
	}
	if a.deps.Queue == nil || !a.deps.Queue.QueueOn(e.ID) {
		return "", errs.Errorf("edge.queue", errs.NotFound, "event %q has no waiting room", e.ID)
	}
	return e.ID, nil
}

// powSolution reads an optional proof-of-work solution.
func powSolution(v string) (string, error) {
	if len(v) > maxPoWSolutionLen {
		return "", errs.E("edge.queue_join", errs.Invalid, "the proof-of-work solution is too long")
	}
	return v, nil
}

// guardJoin applies the join limits, writing the header fields a refusal
// carries.
func (a *API) guardJoin(c *fiber.Ctx, eventID, session, pow string) error {
	if a.deps.JoinGuard == nil {
		return nil
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	err := a.deps.JoinGuard.Check(ctx, c.IP(), session, eventID, pow, time.Now())
	if err == nil {
		return nil
	}
	setJoinGuardHeaders(c, err)
	if _, _, ok := joinguard.LimitOf(err); ok {
		a.count("queue_join", "refused")
	}
	if _, _, ok := joinguard.ChallengeOf(err); ok {
		a.count("queue_join", "challenged")
	}
	return err
}

// queueSocket upgrades to the waiting room's WebSocket.
func (a *API) queueSocket(c *fiber.Ctx) error {
	id, err := a.queueEvent(c)
	if err != nil {
		return err
	}
	if len(c.Get(fiber.HeaderUpgrade)) == 0 {
		c.Set(fiber.HeaderUpgrade, "websocket")
		return c.Status(fiber.StatusUpgradeRequired).JSON(ErrorBody{Error: ErrorDetail{Code: errs.Invalid.Code(), Reason: "upgrade_required",
			Message: "this is a WebSocket endpoint: send a WebSocket handshake, or use POST /v1/events/{id}/queue/join and GET .../queue/status"}})
	}
	pow, err := powSolution(c.Query("pow"))
	if err != nil {
		return err
	}
	session := a.session(c)
	// A socket of a session already in line is a reconnect, not a join:
	// only new tickets pass the join limits.
	if !a.deps.Queue.Joined(id, session) {
		if err := a.guardJoin(c, id, session, pow); err != nil {
			return err
		}
	}
	return a.deps.Queue.Upgrade(c.Context(), id, session)
}

func (a *API) queueJoin(c *fiber.Ctx) error {
	id, err := a.queueEvent(c)
	if err != nil {
		return err
	}
	pow, err := powSolution(c.Get(HeaderQueuePoW))
	if err != nil {
		return err
	}
	session := a.session(c)
	if err := a.guardJoin(c, id, session, pow); err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	st, created, err := a.deps.Queue.Join(ctx, id, session)
	if err != nil {
		return err
	}
	if created {
		c.Status(fiber.StatusCreated)
	}
	return c.JSON(st)
}

func (a *API) queueStatus(c *fiber.Ctx) error {
	id, err := a.queueEvent(c)
	if err != nil {
		return err
	}
	session, ok := existingSession(c)
	if !ok {
		a.session(c)
		return errs.E("edge.queue_status", errs.NotFound, "this session has not joined the queue").WithReason("not_joined")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	st, err := a.deps.Queue.Status(ctx, id, session)
	if errs.KindOf(err) == errs.NotFound {
		return errs.E("edge.queue_status", errs.NotFound, "this session has not joined the queue").WithReason("not_joined")
	}
	if err != nil {
		return err
	}
	return c.JSON(st)
}

// PoWChallenge is the body of GET /v1/events/{id}/queue/challenge.
type PoWChallenge struct {
	Challenge  string `json:"challenge"`
	Difficulty int    `json:"difficulty"`
}

func (a *API) queueChallenge(c *fiber.Ctx) error {
	id, err := a.queueEvent(c)
	if err != nil {
		return err
	}
	session := a.session(c)
	if a.deps.JoinGuard == nil {
		return c.JSON(PoWChallenge{})
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	ch, d, err := a.deps.JoinGuard.Challenge(ctx, c.IP(), session, id, time.Now())
	if err != nil {
		return err
	}
	return c.JSON(PoWChallenge{Challenge: ch, Difficulty: d})
}

func (a *API) queueDraw(c *fiber.Ctx) error {
	id, err := a.queueEvent(c)
	if err != nil {
		return err
	}
	offset, err := queryInt(c, "offset", "edge.queue_draw")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", "edge.queue_draw")
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r, err := a.deps.Queue.Draw(ctx, id, offset, limit)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.JSON(r)
}

// maxDrawQuery bounds the offset and limit of a draw record page: far above
// any pre-queue (queue.Config.MaxTickets is 2,000,000 per edge).
const maxDrawQuery = 1 << 30

// queryInt reads an optional non-negative integer query parameter.
func queryInt(c *fiber.Ctx, name, op string) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxDrawQuery || len(v) > 10 {
		return 0, errs.Errorf(op, errs.Invalid, "%s must be an integer between 0 and %d", name, maxDrawQuery)
	}
	return n, nil
}

func (a *API) jwks(c *fiber.Ctx) error {
	if a.deps.Queue == nil {
		return errs.E("edge.jwks", errs.Unavailable, "this edge has no waiting room")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	raw, err := a.deps.Queue.JWKS(ctx)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderCacheControl, "public, max-age=60")
	return c.Send(raw)
}
