package queue

import (
	"context"
	"sync"
	"time"

	"github.com/ticketing/ticketing/services/queue"
)

// token is an admission token and when it expires.
type token struct {
	value   string
	expires time.Time
}

// tokenCache keeps the token of each admitted ticket from the core until
// shortly before it expires, so that every push and status of an admitted
// user shows the same token without a request to the core, and lets one
// request at a time fetch it.
type tokenCache struct {
	refreshBefore time.Duration
	retryAfter    time.Duration
	mu            sync.Mutex
	m             map[queue.TicketID]*tokenEntry
}

type tokenEntry struct {
	ready chan struct{}
	tok   token
	err   error
	at    time.Time // when the fetch finished
}

// get returns the ticket's cached token or fetches one. A failed fetch is
// remembered for retryAfter so that a core that is down is not asked once
// per push.
func (c *tokenCache) get(ctx context.Context, t queue.TicketID, now time.Time, fetch func(context.Context) (token, error)) (token, bool, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[queue.TicketID]*tokenEntry{}
	}
	if e, ok := c.m[t]; ok {
		select {
		case <-e.ready:
			if e.err == nil && now.Before(e.tok.expires.Add(-c.refreshBefore)) {
				c.mu.Unlock()
				return e.tok, false, nil
			}
			if e.err != nil && now.Sub(e.at) < c.retryAfter {
				c.mu.Unlock()
				return token{}, false, e.err
			}
		default:
			c.mu.Unlock()
			select {
			case <-e.ready:
				return e.tok, false, e.err
			case <-ctx.Done():
				return token{}, false, ctx.Err()
			}
		}
	}
	e := &tokenEntry{ready: make(chan struct{})}
	c.m[t] = e
	c.mu.Unlock()
	e.tok, e.err = fetch(ctx)
	e.at = now
	close(e.ready)
	return e.tok, true, e.err
}

// sweep drops tokens that expired and failures that may be retried.
func (c *tokenCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, e := range c.m {
		select {
		case <-e.ready:
			if (e.err == nil && !now.Before(e.tok.expires)) || (e.err != nil && now.Sub(e.at) >= c.retryAfter) {
				delete(c.m, t)
			}
		default:
		}
	}
}
