package sqlite

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTakeToken: a bucket gives its burst at once, then refuses, saying
// how long until the next token; it refills with time, never past its
// burst; a refund gives a token back; buckets are apart per key; the
// sweep deletes the buckets full again, and only those.
func TestTakeToken(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		ctx := context.Background()
		db := MustOpenDB(t)
		t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		take := func(key string, at time.Time) (bool, time.Duration) {
			t.Helper()
			ok, wait, err := db.TakeToken(ctx, key, 6, 3, at) // a token each 10 s, 3 at most
			if err != nil {
				t.Fatal(err)
			}
			return ok, wait
		}
		for i := range 3 {
			if ok, _ := take("probe:a", t0); !ok {
				t.Fatalf("take %d of a burst of 3 refused", i+1)
			}
		}
		ok, wait := take("probe:a", t0)
		if ok {
			t.Fatal("a fourth take at once granted past a burst of 3")
		}
		if wait < 9*time.Second || wait > 10*time.Second {
			t.Errorf("refused with a wait of %v, want 10 s (a token each 10 s)", wait)
		}
		if ok, _ := take("probe:b", t0); !ok {
			t.Error("another key's bucket is empty too")
		}
		// 4 s later, 0.4 of a token: still refused, and the refusal took
		// nothing.
		if ok, wait := take("probe:a", t0.Add(4*time.Second)); ok || wait < 5*time.Second || wait > 6*time.Second {
			t.Errorf("after 4 s: ok %v, wait %v; want refused, 6 s", ok, wait)
		}
		if ok, _ := take("probe:a", t0.Add(10*time.Second)); !ok {
			t.Error("after 10 s, the token refilled is refused")
		}
		if ok, _ := take("probe:a", t0.Add(11*time.Second)); ok {
			t.Error("after 11 s, a second token granted")
		}
		// A refund gives one back.
		if err := db.RefundToken(ctx, "probe:a", 3); err != nil {
			t.Fatal(err)
		}
		if ok, _ := take("probe:a", t0.Add(11*time.Second)); !ok {
			t.Error("the token refunded is refused")
		}
		// An hour idle fills the bucket to its burst, not past it.
		later := t0.Add(time.Hour)
		for i := range 3 {
			if ok, _ := take("probe:a", later); !ok {
				t.Fatalf("an hour later, take %d of 3 refused", i+1)
			}
		}
		if ok, _ := take("probe:a", later); ok {
			t.Error("an hour idle filled the bucket past its burst")
		}
		// A bucket seen from a clock behind the last take's refills
		// nothing, and its refusal says the same wait.
		if ok, _ := take("probe:a", later.Add(-time.Minute)); ok {
			t.Error("a take from a clock a minute behind was granted")
		}

		// The sweep: probe:b (one token taken at t0) is full again 10 s
		// later; probe:a, emptied an hour later, is not.
		n, err := db.SweepTokens(ctx, t0.Add(10*time.Second-time.Nanosecond))
		if err != nil || n != 0 {
			t.Fatalf("swept %d buckets (%v) before any is full, want 0", n, err)
		}
		if n, err = db.SweepTokens(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
			t.Fatalf("swept %d buckets (%v) a minute on, want 1 (probe:b's)", n, err)
		}
		if ok, _ := take("probe:a", later); ok {
			t.Error("the sweep deleted a bucket not yet full")
		}
		if n, err = db.SweepTokens(ctx, later.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("swept %d buckets (%v) an hour on, want 1", n, err)
		}
	})
}

// TestTakeTokenShared: takers on two instances sharing one database, all
// at once, get exactly the bucket's burst between them.
func TestTakeTokenShared(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		ctx := context.Background()
		dbs := MustOpenShared(t, 2)
		now := time.Now()
		const burst, takers = 10, 40
		var granted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range takers {
			wg.Go(func() {
				<-start
				ok, _, err := dbs[i%2].TakeToken(ctx, "account:shared", 1e-6, burst, now)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := granted.Load(); got != burst {
			t.Errorf("%d takers on two instances got %d tokens, want the burst, %d", takers, got, burst)
		}
	})
}
