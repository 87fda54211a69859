package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/internal/tracing"
)

// trace is the edge's tracing entry point: it asks tracing.StartEntry
// whether the request is sampled (the caller's traceparent header, else
// the configured ratio) and, if so, runs the request under a server span
// that the handlers' contexts (API.ctx) carry to the core. An unsampled
// request costs a header lookup and nothing else.
func (a *API) trace(c *fiber.Ctx) error {
	if !tracing.Enabled() {
		return c.Next()
	}
	var parent string
	if v := c.Request().Header.Peek(tracing.HeaderTraceParent); len(v) > 0 {
		parent = string(v)
	}
	ctx, span := tracing.StartEntry(c.UserContext(), "HTTP", trace.SpanKindServer, parent)
	if !span.IsRecording() {
		return c.Next()
	}
	defer span.End()
	c.SetUserContext(ctx)
	err := c.Next()
	if err != nil {
		// Answer the error here, as observe does, so that the span has
		// the status the client gets.
		if herr := a.errorHandler(c, err); herr != nil {
			span.RecordError(herr)
			return herr
		}
	}
	method, route, status := strings.Clone(c.Method()), c.Route().Path, c.Response().StatusCode()
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route),
		attribute.String("url.path", strings.Clone(c.Path())), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, string(c.Response().Body()))
	}
	return nil
}
