package x

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

type waitKind int

const (
	waitNetwork   waitKind = iota // connection failed or broke
	waitHTTP                      // an HTTP error worth retrying (5xx and the like)
	waitRateLimit                 // 429 Too Many Requests
)

// backoff counts consecutive failures of each kind since the last success.
type backoff struct{ network, http, rate int }

// next returns how long to wait after a failure: linear for network
// errors, exponential for HTTP errors, exponential from a longer start for
// rate limiting, and never before the rate limit resets.
func (b *backoff) next(kind waitKind, p Policy, untilReset time.Duration) time.Duration {
	switch kind {
	case waitNetwork:
		b.network++
		return min(p.NetworkStep*time.Duration(b.network), p.NetworkMax)
	case waitRateLimit:
		d := doubled(p.RateLimitStart, b.rate, math.MaxInt64)
		b.rate++
		return max(d, untilReset)
	default:
		d := doubled(p.HTTPStart, b.http, p.HTTPMax)
		b.http++
		return d
	}
}

// doubled is start doubled n times, at most limit. It never overflows: a
// plain start<<n turns negative after some 30 doublings of 5 s (about three
// hours of 5xx answers at the 320 s cap), and a negative wait is no wait.
func doubled(start time.Duration, n int, limit time.Duration) time.Duration {
	d := start
	for ; n > 0 && d < limit; n-- {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// rateLimitReset reads x-rate-limit-reset (Unix seconds) as a duration
// from now; 0 when absent or past.
func (s *Source) rateLimitReset(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	sec, err := strconv.ParseInt(h.Get("x-rate-limit-reset"), 10, 64)
	if err != nil {
		return 0
	}
	return max(0, time.Unix(sec, 0).Sub(s.Now()))
}
