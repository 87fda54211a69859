package httpapi

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
)

// statusOf is the HTTP status of an error kind (errs.Kind.HTTPStatus).
func statusOf(k errs.Kind) int { return k.HTTPStatus() }

// kindOfStatus classifies Fiber's own errors (unknown route, body too
// large, …).
func kindOfStatus(status int) errs.Kind {
	switch status {
	case fiber.StatusBadRequest:
		return errs.Invalid
	case fiber.StatusNotFound, fiber.StatusMethodNotAllowed:
		return errs.NotFound
	case fiber.StatusRequestEntityTooLarge, fiber.StatusRequestHeaderFieldsTooLarge:
		return errs.TooLarge
	case fiber.StatusUnauthorized:
		return errs.Unauthorized
	case fiber.StatusTooManyRequests:
		return errs.TooMany
	case fiber.StatusServiceUnavailable:
		return errs.Unavailable
	}
	if status >= 400 && status < 500 {
		return errs.Invalid // a client error is never "internal"
	}
	return errs.Other
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

func (a *API) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	status := fiber.StatusInternalServerError
	detail := ErrorDetail{Code: errs.Other.Code(), Message: "internal error"}
	switch {
	case errors.As(err, &fe):
		status = fe.Code
		k := kindOfStatus(fe.Code)
		detail = ErrorDetail{Code: k.Code(), Message: fe.Message}
		if status == fiber.StatusMethodNotAllowed {
			detail.Code = "method_not_allowed"
			if a.routes != nil {
				if allow := a.routes.allowed(c.Path()); allow != nil {
					c.Set(fiber.HeaderAllow, strings.Join(allow, ", "))
				}
			}
		}
		if status == fiber.StatusBadRequest {
			// fasthttp's parse errors quote the raw request, headers and
			// all (Authorization, whatever a proxy in front added).
			detail.Message = "malformed HTTP request"
		}
	default:
		k := errs.KindOf(err)
		status = statusOf(k)
		detail = ErrorDetail{Code: k.Code(), Reason: errs.ReasonOf(err), Message: errs.Message(err)}
	}
	if status >= 500 && status != fiber.StatusServiceUnavailable {
		a.log.ErrorContext(c.UserContext(), "request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if status == fiber.StatusServiceUnavailable && len(c.Response().Header.Peek(fiber.HeaderRetryAfter)) == 0 {
		c.Set(fiber.HeaderRetryAfter, "1") // unless the refusal said how long (drain mode)
	}
	return c.Status(status).JSON(ErrorBody{Error: detail})
}
