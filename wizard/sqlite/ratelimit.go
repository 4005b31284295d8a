package sqlite

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Rate limits' token buckets, kept in the database so that gatecheck
// instances sharing it share their limits (rate_buckets, migration 0016).
// A bucket holds up to burst tokens and gains perMinute of them a minute;
// a take is one statement, an upsert that refills the bucket by the time
// passed and takes a token only if a whole one is there, so that
// concurrent takers, on any instance, never get more than the bucket has.

// maxFill bounds how long, in nanoseconds, an empty bucket takes to fill
// (about 31 years), so that full_at stays within an int64 however slow a
// rate is asked for.
const maxFill = 1e18

// whole is what counts as a whole token: a refill computed in floating
// point may fall a hair short of one.
const whole = "0.999999999"

// takeQueries are the take statements, per dialect.
var takeQueries sync.Map // *dialect -> string

// takeQuery is the take statement in d's spelling: ?1 the key, ?2 the
// burst, ?3 now (Unix ns), ?4 nanoseconds per token. A new bucket starts
// full less the token taken; an existing one is refilled by the time
// since it was last seen (none when that is in the future: another
// instance's clock may be ahead), and gives a token when it has one.
func takeQuery(d *dialect) string {
	if q, ok := takeQueries.Load(d); ok {
		return q.(string)
	}
	least, greatest := "min", "max"
	if d.name == "postgres" {
		least, greatest = "LEAST", "GREATEST"
	}
	const (
		burst    = `CAST(?2 AS DOUBLE PRECISION)`
		now      = `CAST(?3 AS BIGINT)`
		perToken = `CAST(?4 AS DOUBLE PRECISION)`
	)
	avail := least + `(` + burst + `, b.tokens + ` + greatest + `(0, ` + now + ` - b.at) / ` + perToken + `)`
	ok := `(` + avail + ` >= ` + whole + `)`
	left := `(` + avail + ` - CASE WHEN ` + ok + ` THEN 1 ELSE 0 END)`
	at := greatest + `(b.at, ` + now + `)`
	q := `INSERT INTO rate_buckets AS b (key, tokens, at, taken, full_at)
		VALUES (?1, ` + burst + ` - 1, ` + now + `, true, ` + now + ` + CAST(` + perToken + ` AS BIGINT))
		ON CONFLICT (key) DO UPDATE SET
			tokens = ` + left + `,
			at = ` + at + `,
			taken = ` + ok + `,
			full_at = ` + at + ` + CAST((` + burst + ` - ` + left + `) * ` + perToken + ` AS BIGINT)
		RETURNING taken, tokens`
	takeQueries.Store(d, q)
	return q
}

// TakeToken takes a token from the bucket of key, which holds up to burst
// tokens and gains perMinute of them a minute, at now. When the bucket has
// no whole token, ok is false and wait says how long until it has one;
// a refused take costs nothing. An error is the database's (the caller
// decides whether a limit it cannot check lets the request through).
func (db *DB) TakeToken(ctx context.Context, key string, perMinute float64, burst int, now time.Time) (ok bool, wait time.Duration, err error) {
	if perMinute <= 0 || burst < 1 {
		return false, 0, errors.New("a token bucket needs a rate above zero and room for a token")
	}
	perToken := min(float64(time.Minute)/perMinute, maxFill/float64(burst))
	var left float64
	err = db.write.QueryRowContext(ctx, takeQuery(db.d), key, float64(burst), nanos(now), perToken).Scan(&ok, &left)
	if err != nil || ok {
		return ok, 0, err
	}
	return false, time.Duration((1 - left) * perToken), nil
}

// RefundToken gives back a token taken from key's bucket (a sign-in that
// succeeded costs the account nothing), up to burst.
func (db *DB) RefundToken(ctx context.Context, key string, burst int) error {
	least := "min"
	if db.d.name == "postgres" {
		least = "LEAST"
	}
	_, err := db.write.ExecContext(ctx, `UPDATE rate_buckets SET tokens = `+least+`(CAST(? AS DOUBLE PRECISION), tokens + 1) WHERE key = ?`,
		float64(burst), key)
	return err
}

// SweepTokens deletes the buckets full again at now, which are the same
// as no bucket, and says how many it deleted.
func (db *DB) SweepTokens(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM rate_buckets WHERE full_at <= ?`, nanos(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
