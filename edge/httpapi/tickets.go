package httpapi

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
)

// Tickets is the tickets service, as the edge uses it.
type Tickets interface {
	OrderTickets(ctx context.Context, r ticketsapi.OrderRequest) (ticketsapi.Tickets, error)
	Mine(ctx context.Context, r ticketsapi.AccountRequest) (ticketsapi.Tickets, error)
	Gate(ctx context.Context, r ticketsapi.GateRequest) (ticketsapi.Gate, error)
}

func (a *API) tickets(op string) (Tickets, error) {
	if a.deps.Tickets == nil {
		return nil, errs.E(op, errs.Unavailable, "tickets are not served by this edge")
	}
	return a.deps.Tickets, nil
}

// orderTickets answers the tickets of the caller's order: none until the
// order is fulfilled; another account's order is not found.
func (a *API) orderTickets(c *fiber.Ctx) error {
	const op = "edge.order_tickets"
	svc, err := a.tickets(op)
	if err != nil {
		return err
	}
	id, err := orderID(c, op)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	list, err := svc.OrderTickets(ctx, ticketsapi.OrderRequest{Account: callerOf(c).Subject, Order: id})
	if err != nil {
		return err
	}
	return c.JSON(list)
}

// myTickets answers the caller's tickets, of every order and event.
func (a *API) myTickets(c *fiber.Ctx) error {
	const op = "edge.my_tickets"
	svc, err := a.tickets(op)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	list, err := svc.Mine(ctx, ticketsapi.AccountRequest{Account: callerOf(c).Subject})
	if err != nil {
		return err
	}
	return c.JSON(list)
}

// eventGate answers what an event's gate scanners download ahead to
// verify its barcodes offline: the public keys and the rotating codes'
// secret (the event's organizer's staff or an admin).
func (a *API) eventGate(c *fiber.Ctx) error {
	const op = "edge.event_gate"
	svc, err := a.tickets(op)
	if err != nil {
		return err
	}
	e, _, err := a.event(c)
	if err != nil {
		return err
	}
	r := ticketsapi.GateRequest{Event: e.ID}
	r.Admin, r.Staff = rolesOf(callerOf(c))
	ctx, cancel := a.ctx(c)
	defer cancel()
	g, err := svc.Gate(ctx, r)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(g)
}
