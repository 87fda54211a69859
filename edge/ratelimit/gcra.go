package ratelimit

import "time"

// GCRA is the generic cell rate algorithm, the one definition every
// implementation follows (ratelimit/redis runs the same steps in Lua).
//
// now and tat are instants on one clock, as durations since any fixed
// origin; tat is the key's stored theoretical arrival time, or anything not
// after now (zero, say) for a key with no state. limit must be valid and
// 1 <= n <= limit.Burst (see CheckRequest).
//
// It returns the decision and the TAT to store: on an allowed request the
// new TAT, which the key must keep for Decision.ResetAfter (after that it
// lies in the past and the key may be forgotten); on a denied request the
// unchanged tat, so that denied requests consume nothing.
func GCRA(now, tat time.Duration, limit Limit, n int) (Decision, time.Duration) {
	interval := limit.Interval()
	burstOffset := interval * time.Duration(limit.Burst)
	if tat < now {
		tat = now
	}
	newTAT := tat + interval*time.Duration(n)
	allowAt := newTAT - burstOffset
	d := Decision{Limit: limit.Burst}
	if now < allowAt {
		// Denied: report what is left without this request.
		d.RetryAfter = allowAt - now
		d.ResetAfter = tat - now
		d.Remaining = remaining(now-(tat-burstOffset), interval, limit.Burst)
		return d, tat
	}
	d.Allowed = true
	d.ResetAfter = newTAT - now
	d.Remaining = remaining(now-allowAt, interval, limit.Burst)
	return d, newTAT
}

func remaining(slack, interval time.Duration, burst int) int {
	if slack < 0 {
		return 0
	}
	r := int(slack / interval)
	return min(r, burst)
}
