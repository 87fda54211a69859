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
}

// orderTickets answers the tickets of the caller's order: none until the
// order is fulfilled; another account's order is not found.
func (a *API) orderTickets(c *fiber.Ctx) error {
	const op = "edge.order_tickets"
	if a.deps.Tickets == nil {
		return errs.E(op, errs.Unavailable, "tickets are not served by this edge")
	}
	id, err := orderID(c, op)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	list, err := a.deps.Tickets.OrderTickets(ctx, ticketsapi.OrderRequest{Account: callerOf(c).Subject, Order: id})
	if err != nil {
		return err
	}
	return c.JSON(list)
}
