package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ticketing/ticketing/internal/errs"
)

// SQLSTATE codes that adapters test for.
const (
	UniqueViolation    = "23505"
	ExclusionViolation = "23P01"
)

// Kind classifies an error from pgx by what a caller can do about it:
//
//   - a unique or exclusion violation is errs.Conflict;
//   - other integrity violations and bad data (classes 22, 23) are
//     errs.Invalid;
//   - a server or connection that failed, a serialization failure or
//     deadlock (class 40), a cancelled or timed-out statement (class 57,
//     the context) are errs.Unavailable: trying again may work; so is a
//     connection lost during a statement (the server crashed: no answer,
//     an unexpected EOF, a network error), whose outcome is unknown;
//   - anything else (a syntax error, an undefined table: a bug) is
//     errs.Other.
//
// An *errs.Error in the chain keeps its own kind.
func Kind(err error) errs.Kind {
	if err == nil {
		return errs.Other
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return errs.KindOf(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == UniqueViolation, pe.Code == ExclusionViolation:
			return errs.Conflict
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
			return errs.Invalid
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "40"),
			strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57"), strings.HasPrefix(pe.Code, "58"):
			return errs.Unavailable
		}
		return errs.Other
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne) {
		return errs.Unavailable
	}
	return errs.Other
}

// ConstraintOf returns the name of the constraint a PostgreSQL error
// names, or "".
func ConstraintOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}
