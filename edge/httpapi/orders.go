package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	"github.com/ticketing/ticketing/services/pricing"
)

// Orders is what the API needs of the orders service (NATS micro service
// "orders"; services/orders/natsapi.Client). The account is the caller the
// gateway authenticated: another account's order is errs.NotFound.
type Orders interface {
	Quote(ctx context.Context, r orders.QuoteRequest) (pricing.Quote, error)
	Create(ctx context.Context, r orders.CreateRequest) (ordersapi.Created, error)
	Get(ctx context.Context, r ordersapi.OrderRequest) (orders.View, error)
	List(ctx context.Context, r ordersapi.ListRequest) (ordersapi.List, error)
	Pay(ctx context.Context, r ordersapi.PayRequest) (orders.View, error)
	Sync(ctx context.Context, r ordersapi.OrderRequest) (orders.View, error)
	Cancel(ctx context.Context, r ordersapi.OrderRequest) (orders.View, error)
	Refund(ctx context.Context, r ordersapi.RefundRequest) (orders.View, error)
	Prices(ctx context.Context, event string) (pricing.Rules, error)
	PutPrices(ctx context.Context, event string, rules []byte) (pricing.Rules, error)
	PutVoucher(ctx context.Context, voucher []byte) (pricing.Voucher, error)
}

// Limits of the orders' bodies.
const (
	maxOrderBody   = 8 << 10
	maxVoucherLen  = 64
	maxReasonLen   = 200
	maxMethodLen   = 64
	maxOrderIDLen  = 64
	maxOrdersLimit = 100
)

// cartBody is the body of POST /v1/quotes and POST /v1/orders.
type cartBody struct {
	Holds   []string            `json:"holds"`
	AddOns  []pricing.AddOnItem `json:"add_ons"`
	Voucher string              `json:"voucher"`
	QuoteID string              `json:"quote_id"`
}

// decodeCart decodes and bounds a quote or order body (quote_id only on
// orders).
func decodeCart(raw []byte, order bool) (cartBody, error) {
	const op = "edge.cart"
	var b cartBody
	if len(raw) > maxOrderBody {
		return b, errs.E(op, errs.TooLarge, "the body is too large")
	}
	if err := decodeStrict(op, raw, &b); err != nil {
		return b, err
	}
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	switch {
	case len(b.Holds) == 0 || len(b.Holds) > orders.MaxHolds:
		return b, bad("holds: 1-%d hold ids", orders.MaxHolds)
	case len(b.AddOns) > orders.MaxAddOns:
		return b, bad("add_ons: at most %d lines", orders.MaxAddOns)
	case len(b.Voucher) > maxVoucherLen:
		return b, bad("voucher: at most %d characters", maxVoucherLen)
	case !order && b.QuoteID != "":
		return b, bad("quote_id belongs to an order, not a quote")
	case b.QuoteID != "" && !pricing.ValidQuoteID(b.QuoteID):
		return b, bad("quote_id is not a quote id")
	}
	for _, h := range b.Holds {
		if h == "" || len(h) > 200 {
			return b, bad("holds: a hold id is 1-200 characters")
		}
	}
	for _, a := range b.AddOns {
		if !pricing.ValidID(a.ID) || a.Quantity < 1 || a.Quantity > maxQuantity {
			return b, bad("add_ons: each needs an id and a quantity of 1-%d", maxQuantity)
		}
	}
	return b, nil
}

// fingerprint digests an order body for its idempotency key: the same
// for the same request however it is written (JSON formatting, the order
// of the holds and of the add-on lines, the voucher's case and blanks),
// different for any other. The fields are encoded unambiguously (as
// JSON): their values may hold any character, so joining them with a
// separator made different bodies collide (holds ["h","x:1"] and holds
// ["h"] with add-on x × 1 were the same request).
func (b cartBody) fingerprint() string {
	holds := slices.Clone(b.Holds)
	slices.Sort(holds)
	addOns := slices.Clone(b.AddOns)
	slices.SortFunc(addOns, func(x, y pricing.AddOnItem) int {
		return cmp.Or(strings.Compare(x.ID, y.ID), cmp.Compare(x.Quantity, y.Quantity))
	})
	if len(addOns) == 0 {
		addOns = nil // "add_ons": [] and null are the same request as none
	}
	canon, _ := json.Marshal(struct {
		Holds   []string            `json:"h"`
		AddOns  []pricing.AddOnItem `json:"a"`
		Voucher string              `json:"v"`
		QuoteID string              `json:"q"`
	}{holds, addOns, pricing.NormalizeCode(b.Voucher), b.QuoteID})
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:16])
}

func (a *API) orders(op string) (Orders, error) {
	if a.deps.Orders == nil {
		return nil, errs.E(op, errs.Unavailable, "orders are not served by this edge")
	}
	return a.deps.Orders, nil
}

func (a *API) createQuote(c *fiber.Ctx) error {
	const op = "edge.quote"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	if err := a.limitKey(c, "checkout_caller", callerOf(c).Subject, a.cfg.CheckoutLimit); err != nil {
		return err
	}
	raw, err := requestBody(c, op)
	if err != nil {
		return err
	}
	b, err := decodeCart(raw, false)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	q, err := svc.Quote(ctx, orders.QuoteRequest{Account: callerOf(c).Subject, Holds: b.Holds, AddOns: b.AddOns, Voucher: b.Voucher})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(q)
}

func (a *API) createOrder(c *fiber.Ctx) error {
	const op = "edge.order"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	who := callerOf(c)
	if err := a.limitKey(c, "checkout_caller", who.Subject, a.cfg.CheckoutLimit); err != nil {
		return err
	}
	key, err := idempotencyKey(c.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	raw, err := requestBody(c, op)
	if err != nil {
		return err
	}
	b, err := decodeCart(raw, true)
	if err != nil {
		return err
	}
	if err := a.orderAdmitted(c, b.Holds); err != nil {
		return err
	}
	channel := who.Channel
	if channel == "" {
		channel = "web"
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	out, err := svc.Create(ctx, orders.CreateRequest{
		QuoteRequest: orders.QuoteRequest{Account: who.Subject, Holds: b.Holds, AddOns: b.AddOns, Voucher: b.Voucher},
		QuoteID:      b.QuoteID, Channel: channel,
		// Keys are scoped to the caller.
		IdemKey: who.Subject + ":" + key, Fingerprint: b.fingerprint(),
	})
	if err != nil {
		return err
	}
	c.Location("/v1/orders/" + out.Order.ID)
	status := fiber.StatusCreated
	if !out.Created {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(out.Order)
}

// orderAdmitted checks the admission token of an order whose holds are
// on an event with a waiting room (see admitted). A hold id names its
// event; one the edge cannot place is left to the orders service to
// refuse.
func (a *API) orderAdmitted(c *fiber.Ctx, holds []string) error {
	seen := ""
	for _, h := range holds {
		p, ok := inventory.PartitionOfHold(h)
		if !ok {
			continue
		}
		ev := p[:strings.LastIndexByte(p, '.')]
		if ev == seen {
			continue
		}
		seen = ev
		if e, _, ok := a.deps.Catalog.Event(ev); ok {
			if err := a.admitted(c, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// orderID is the path's order id, bounded.
func orderID(c *fiber.Ctx, op string) (string, error) {
	id := c.Params("id")
	if id == "" || len(id) > maxOrderIDLen {
		return "", errs.E(op, errs.NotFound, "no such order")
	}
	return id, nil
}

func (a *API) getOrder(c *fiber.Ctx) error {
	return a.onOrder(c, "edge.get_order", 0, func(ctx context.Context, svc Orders, id string) (orders.View, error) {
		return svc.Get(ctx, ordersapi.OrderRequest{Account: callerOf(c).Subject, ID: id})
	})
}

func (a *API) cancelOrder(c *fiber.Ctx) error {
	return a.onOrder(c, "edge.cancel_order", 0, func(ctx context.Context, svc Orders, id string) (orders.View, error) {
		return svc.Cancel(ctx, ordersapi.OrderRequest{Account: callerOf(c).Subject, ID: id})
	})
}

// onOrder answers what f makes of the path's order: the orders service,
// the order id and a context of the edge's timeout (or of timeout, when
// not 0: a payment waits for the gateway) are f's.
func (a *API) onOrder(c *fiber.Ctx, op string, timeout time.Duration, f func(context.Context, Orders, string) (orders.View, error)) error {
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	id, err := orderID(c, op)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	if timeout > 0 {
		cancel()
		ctx, cancel = context.WithTimeout(c.UserContext(), timeout)
	}
	defer cancel()
	v, err := f(ctx, svc, id)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// decodeOrderBody decodes and bounds the small body of an order route
// (pay, refund), then has check judge it.
func decodeOrderBody[T any](op string, raw []byte, check func(*T) error) (T, error) {
	var b T
	if len(raw) > maxOrderBody {
		return b, errs.E(op, errs.TooLarge, "the body is too large")
	}
	if err := decodeStrict(op, raw, &b); err != nil {
		return b, err
	}
	return b, check(&b)
}

// payBody is the body of POST /v1/orders/{id}/pay.
type payBody struct {
	// Method is the card's token from the payment service's card page.
	Method string `json:"method"`
}

func decodePay(raw []byte) (payBody, error) {
	const op = "edge.pay"
	return decodeOrderBody(op, raw, func(b *payBody) error {
		if b.Method == "" || len(b.Method) > maxMethodLen {
			return errs.Errorf(op, errs.Invalid, "method: the card's token, 1-%d characters", maxMethodLen)
		}
		return nil
	})
}

func (a *API) payOrder(c *fiber.Ctx) error {
	const op = "edge.pay"
	return a.onOrder(c, op, a.cfg.PayTimeout, func(ctx context.Context, svc Orders, id string) (orders.View, error) {
		raw, err := requestBody(c, op)
		if err != nil {
			return orders.View{}, err
		}
		b, err := decodePay(raw)
		if err != nil {
			return orders.View{}, err
		}
		return svc.Pay(ctx, ordersapi.PayRequest{Account: callerOf(c).Subject, ID: id, Method: b.Method,
			ReturnURL: a.returnURL(c, id)})
	})
}

// returnURL is where a 3-D Secure challenge sends the buyer back: this
// site's return route (the public URL when configured, else the
// request's own origin), never a URL from the request body.
func (a *API) returnURL(c *fiber.Ctx, id string) string {
	base := a.cfg.PublicURL
	if base == "" {
		base = c.Protocol() + "://" + c.Hostname()
	}
	return strings.TrimRight(base, "/") + "/v1/orders/" + url.PathEscape(id) + "/return"
}

// paymentReturn is where the buyer's browser comes back from 3-D Secure:
// it has the order's payment read from the gateway (the webhook may come
// later), then sends the browser to the order's page. The browser may
// carry no session (it comes from the gateway's site, and the session
// cookies are SameSite=Strict): the route needs none and shows nothing.
func (a *API) paymentReturn(c *fiber.Ctx) error {
	const op = "edge.payment_return"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	id, err := orderID(c, op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.cfg.PayTimeout)
	defer cancel()
	if _, err := svc.Sync(ctx, ordersapi.OrderRequest{ID: id}); err != nil && !errs.Is(errs.Unavailable, err) {
		return err
	}
	return c.Redirect("/orders/"+url.PathEscape(id), fiber.StatusSeeOther)
}

func (a *API) myOrders(c *fiber.Ctx) error {
	const op = "edge.my_orders"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	limit := 20
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxOrdersLimit {
			return errs.Errorf(op, errs.Invalid, "limit must be 1-%d", maxOrdersLimit)
		}
		limit = n
	}
	after := c.Query("after")
	if len(after) > maxOrderIDLen {
		return errs.E(op, errs.Invalid, "after is not an order id")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	l, err := svc.List(ctx, ordersapi.ListRequest{Account: callerOf(c).Subject, After: after, Limit: limit})
	if err != nil {
		return err
	}
	return c.JSON(l)
}

// refundBody is the body of POST /v1/admin/orders/{id}/refund.
type refundBody struct {
	Reason string `json:"reason"`
}

func decodeRefund(raw []byte) (refundBody, error) {
	const op = "edge.refund"
	return decodeOrderBody(op, raw, func(b *refundBody) error {
		if b.Reason == "" || len(b.Reason) > maxReasonLen {
			return errs.Errorf(op, errs.Invalid, "reason: 1-%d characters", maxReasonLen)
		}
		return nil
	})
}

// rolesOf says whether the caller is an admin, and of which organizers
// it is staff.
func rolesOf(who *Caller) (admin bool, staff []string) {
	for _, s := range strings.Fields(who.Scope) {
		if org, ok := strings.CutPrefix(s, identity.RoleStaffPrefix); ok && org != "" {
			staff = append(staff, org)
		}
	}
	return who.HasScope(identity.RoleAdmin), staff
}

// refundOrder refunds an order for an admin, or for staff of the order's
// organizer (the orders service checks; another organizer's order is not
// found). A caller with neither role is refused before anything else is
// looked at: the same 403 whatever the body and the id.
func (a *API) refundOrder(c *fiber.Ctx) error {
	const op = "edge.refund"
	r := ordersapi.RefundRequest{}
	r.Admin, r.Staff = rolesOf(callerOf(c))
	if !r.Admin && len(r.Staff) == 0 {
		return errs.E(op, errs.Forbidden, "this needs the admin role or the staff role of the order's organizer")
	}
	return a.onOrder(c, op, a.cfg.PayTimeout, func(ctx context.Context, svc Orders, id string) (orders.View, error) {
		raw, err := requestBody(c, op)
		if err != nil {
			return orders.View{}, err
		}
		b, err := decodeRefund(raw)
		if err != nil {
			return orders.View{}, err
		}
		r.ID, r.Reason = id, b.Reason
		return svc.Refund(ctx, r)
	})
}

// getPrices answers an event's price list (its organizer's staff or an
// admin).
func (a *API) getPrices(c *fiber.Ctx) error {
	const op = "edge.prices"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	e, _, err := a.event(c)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r, err := svc.Prices(ctx, e.ID)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// putPrices writes an event's price list: fees, tax, add-ons, dynamic
// pricing (its switch). The body's version is the stored one + 1 (the
// first is 1): a concurrent write is refused 409.
func (a *API) putPrices(c *fiber.Ctx) error {
	const op = "edge.put_prices"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	e, _, err := a.event(c)
	if err != nil {
		return err
	}
	raw, err := requestBody(c, op)
	if err != nil {
		return err
	}
	if _, err := pricing.DecodeRules(raw); err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r, err := svc.PutPrices(ctx, e.ID, raw)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// putVoucher creates or replaces a voucher (admins).
func (a *API) putVoucher(c *fiber.Ctx) error {
	const op = "edge.put_voucher"
	svc, err := a.orders(op)
	if err != nil {
		return err
	}
	raw, err := requestBody(c, op)
	if err != nil {
		return err
	}
	v, err := pricing.DecodeVoucher(raw)
	if err != nil {
		return err
	}
	if !strings.EqualFold(v.Code, c.Params("code")) {
		return errs.E(op, errs.Invalid, "the voucher's code is not the path's")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	out, err := svc.PutVoucher(ctx, raw)
	if err != nil {
		return err
	}
	return c.JSON(out)
}
