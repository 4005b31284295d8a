package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// limiter is a rate limit: a token bucket per key (a client's address, an
// API key's ID, a hash of an account's name). One instance keeps its
// buckets in memory (memLimiter); instances sharing a PostgreSQL database
// keep them there (storeLimiter), so that a limit holds across them rather
// than once per instance.
type limiter interface {
	// take takes a token from key's bucket; when it has none, ok is false
	// and wait says how long until it has one. A refused take costs
	// nothing.
	take(ctx context.Context, key string) (ok bool, wait time.Duration)
	// refund gives back a token take took (a sign-in that succeeded costs
	// the account nothing).
	refund(ctx context.Context, key string)
}

// newLimiter makes one of the server's limits: in tokens when set, else
// in memory. name tells one limit's keys from another's in the shared table.
func newLimiter(tokens wizard.TokenStore, log *slog.Logger, name string, perMinute float64, burst int) limiter {
	if tokens == nil {
		return newMemLimiter(perMinute, burst)
	}
	return &storeLimiter{tokens: tokens, log: log, prefix: name + ":", perMinute: perMinute, burst: burst}
}

// wholeToken is what counts as a whole token: a refill computed in
// floating point may fall a hair short of one.
const wholeToken = 1 - 1e-9

// memLimiter keeps its buckets in this process's memory, forgetting those
// full again (the same as no bucket) each minute.
type memLimiter struct {
	mu       sync.Mutex
	perToken float64 // nanoseconds per token
	burst    float64
	buckets  map[string]*bucket
	swept    time.Time
}

// bucket is what a bucket held at a time.
type bucket struct {
	tokens float64
	at     time.Time
}

func newMemLimiter(perMinute float64, burst int) *memLimiter {
	return &memLimiter{perToken: float64(time.Minute) / perMinute, burst: float64(burst), buckets: map[string]*bucket{}}
}

// level is what b holds at now, refilled since it was last seen.
func (l *memLimiter) level(b *bucket, now time.Time) float64 {
	return min(l.burst, b.tokens+float64(max(0, now.Sub(b.at)))/l.perToken)
}

func (l *memLimiter) take(_ context.Context, key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if l.level(b, now) >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens, b.at = l.level(b, now), now
	if b.tokens < wholeToken {
		return false, time.Duration((1 - b.tokens) * l.perToken)
	}
	b.tokens--
	return true, 0
}

func (l *memLimiter) refund(_ context.Context, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = min(l.burst, b.tokens+1)
	}
}

// storeLimiter keeps its buckets in the store the instances share: a take
// is one statement there. When the store fails, it lets the request
// through and logs a warning (at most one a minute): a limit that cannot
// be checked must not take the site down with the database.
type storeLimiter struct {
	tokens    wizard.TokenStore
	log       *slog.Logger
	prefix    string
	perMinute float64
	burst     int
	warned    atomic.Int64 // when the last warning was logged (Unix ns)
}

func (l *storeLimiter) take(ctx context.Context, key string) (bool, time.Duration) {
	ok, wait, err := l.tokens.TakeToken(ctx, l.prefix+key, l.perMinute, l.burst, time.Now())
	if err != nil {
		l.warn(ctx, err)
		return true, 0
	}
	return ok, wait
}

func (l *storeLimiter) refund(ctx context.Context, key string) {
	if err := l.tokens.RefundToken(ctx, l.prefix+key, l.burst); err != nil {
		l.warn(ctx, err)
	}
}

func (l *storeLimiter) warn(ctx context.Context, err error) {
	now := time.Now().UnixNano()
	if last := l.warned.Load(); now-last < int64(time.Minute) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.log.WarnContext(ctx, "rate limit not checked: the database failed; letting requests through", "limit", strings.TrimSuffix(l.prefix, ":"), "err", err)
}

// sweepTokens deletes the shared buckets full again.
func (s *Server) sweepTokens(ctx context.Context) {
	if _, err := s.cfg.Tokens.SweepTokens(ctx, time.Now()); err != nil && ctx.Err() == nil {
		s.log.Warn("sweeping rate limits' buckets", "err", err)
	}
}

// addrKey, idKey and accountKey are the limits' keys: a client's bucket
// (see bucketOf), an API key's ID, and an account's name, hashed so that
// what people type in the name field (a password, at times) is never
// stored.
func addrKey(a netip.Addr) string { return bucketOf(a).String() }

func idKey(id int64) string { return strconv.FormatInt(id, 10) }

func accountKey(name string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(name)))
	return hex.EncodeToString(sum[:16])
}
