package sqlite

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestClaimsAreOnce: instances sharing a database, claiming the due mails,
// webhook deliveries and watched cases' checks at the same time, are each
// given every item once between them; a claim hides the item from others
// until its lease ends, then anyone may take it (its instance died);
// work recorded done is never given again, and work given back is due at
// once.
func TestClaimsAreOnce(t *testing.T) { onEngines(t, testClaimsAreOnce) }

func testClaimsAreOnce(t *testing.T) {
	ctx := context.Background()
	dbs := MustOpenShared(t, 3)
	db := dbs[0]
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, d := range dbs {
		d.Now = func() time.Time { return now }
	}
	if err := db.SyncFlagWebhooks(ctx, []string{"https://tickets.example/hook"}, "s"); err != nil {
		t.Fatal(err)
	}
	const n = 24
	for i := range n {
		c := newCase(t, db, fmt.Sprintf("https://site%d.example/", i), "")
		if err := db.QueueMail(ctx, c.ID, nil, &wizard.Mail{Kind: wizard.MailReply, To: "ann@example.com", Subject: "s", Body: "b"}); err != nil {
			t.Fatal(err)
		}
		if err := db.Watch(ctx, c.ID, now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// Each case's creation and its mail make an event, each event a
	// delivery to the one webhook.
	due, _ := db.DueDeliveries(ctx, now, 1000)
	if len(due) < n {
		t.Fatalf("%d deliveries due, want one at least per case created: %d", len(due), n)
	}
	const lease = time.Minute

	kinds := []struct {
		name  string
		total int
		claim func(d *DB, at time.Time, limit int) ([]int64, error)
		done  func(d *DB, id int64) error
		back  func(d *DB, id int64, claimedUntil time.Time) error
	}{
		{"mails", n, func(d *DB, at time.Time, limit int) ([]int64, error) {
			ms, err := d.ClaimMails(ctx, at, lease, limit)
			var ids []int64
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return ids, err
		}, func(d *DB, id int64) error { return d.MailSent(ctx, id) },
			func(d *DB, id int64, _ time.Time) error { return d.ReleaseMail(ctx, id, now) }},
		{"deliveries", len(due), func(d *DB, at time.Time, limit int) ([]int64, error) {
			ds, err := d.ClaimDeliveries(ctx, at, lease, limit)
			var ids []int64
			for _, x := range ds {
				if x.Webhook.URL != "https://tickets.example/hook" || x.Event.Name == "" {
					t.Errorf("a claimed delivery lacks its webhook or event: %+v", x)
				}
				ids = append(ids, x.ID)
			}
			return ids, err
		}, func(d *DB, id int64) error { return d.Delivered(ctx, id, 204) },
			func(d *DB, id int64, _ time.Time) error { return d.ReleaseDelivery(ctx, id, now) }},
		{"watches", n, func(d *DB, at time.Time, limit int) ([]int64, error) {
			cs, err := d.ClaimWatches(ctx, at, lease, limit)
			var ids []int64
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			return ids, err
		}, func(d *DB, id int64) error { return d.WatchChecked(ctx, id, now.Add(2*time.Hour)) }, // past the watch's end: no more checks
			func(d *DB, id int64, claimedUntil time.Time) error { return d.ReleaseWatch(ctx, id, claimedUntil, now) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			n := k.total
			// Three instances claim, a few at a time, all at once.
			var mu sync.Mutex
			got := map[int64]int{}
			var wg sync.WaitGroup
			for _, d := range dbs {
				wg.Go(func() {
					for {
						ids, err := k.claim(d, now, 5)
						if err != nil {
							t.Error(err)
							return
						}
						if len(ids) == 0 {
							return
						}
						mu.Lock()
						for _, id := range ids {
							got[id]++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			var ids []int64
			for id, times := range got {
				if times != 1 {
					t.Errorf("%s %d was given %d times", k.name, id, times)
				}
				ids = append(ids, id)
			}
			if len(ids) != n {
				t.Fatalf("%d %s were given out, want %d", len(ids), k.name, n)
			}
			slices.Sort(ids)
			// While the claims hold, nobody is given them again.
			if again, err := k.claim(dbs[1], now.Add(lease-time.Second), n); err != nil || len(again) != 0 {
				t.Errorf("within the lease, another instance was given %v (%v)", again, err)
			}
			// Half are done; one is given back; the rest were held by an
			// instance that died.
			for _, id := range ids[:n/2] {
				if err := k.done(dbs[2], id); err != nil {
					t.Fatal(err)
				}
			}
			back := ids[n/2]
			if err := k.back(dbs[0], back, now.Add(lease)); err != nil {
				t.Fatal(err)
			}
			if got, err := k.claim(dbs[1], now, n); err != nil || !slices.Equal(got, []int64{back}) {
				t.Errorf("before the lease ends, the one given back should be given again: %v (%v)", got, err)
			}
			got2, err := k.claim(dbs[2], now.Add(lease), n)
			if err != nil {
				t.Fatal(err)
			}
			// The one given back was claimed again at once, so its lease
			// ends with the others'.
			if want := ids[n/2:]; !slices.Equal(got2, want) {
				t.Errorf("after the lease, given %v, want the %d not done %v", got2, len(want), want)
			}
		})
	}
}

// TestClaimSkipsRowsBeingClaimed: on PostgreSQL, a claim made while
// another instance's claim has not yet committed is given the other rows
// at once, rather than waiting for that claim and then taking its rows
// too (FOR UPDATE SKIP LOCKED). SQLite has one writer: claims cannot
// overlap there.
func TestClaimSkipsRowsBeingClaimed(t *testing.T) {
	dbs := mustOpenPG(t, 2)
	a, b := dbs[0], dbs[1]
	ctx := context.Background()
	now := time.Now().UTC()
	var ids []int64
	for i := range 4 {
		c := newCase(t, a, fmt.Sprintf("https://site%d.example/", i), "")
		if err := a.Watch(ctx, c.ID, now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	q := `UPDATE cases SET watch_next = ?1 WHERE id IN (SELECT id FROM cases WHERE watch_next > 0 AND watch_next <= ?2 ORDER BY watch_next, id LIMIT ?3` +
		a.d.skipLocked + `) RETURNING id`
	attempts := 0
	err := a.inTx(ctx, func(tx *txn) error {
		// Claims are serializable transactions: a's commits after b's
		// and is run again; what is looked at is its first try, while
		// b's claim overlapped it.
		if attempts++; attempts > 1 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, q, nanos(now.Add(time.Minute)), nanos(now), 2)
		if err != nil {
			return err
		}
		var held []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			held = append(held, id)
		}
		rows.Close()
		// a's claim holds two rows, uncommitted: b is given the other two.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		got, err := b.ClaimWatches(wctx, now, time.Minute, 4)
		if err != nil {
			return fmt.Errorf("a claim beside another not yet committed: %w", err)
		}
		var gotIDs []int64
		for _, c := range got {
			gotIDs = append(gotIDs, c.ID)
			if slices.Contains(held, c.ID) {
				t.Errorf("case %d was given to both claims", c.ID)
			}
		}
		if len(held)+len(gotIDs) != len(ids) {
			t.Errorf("claims held %v and were given %v, want all of %v between them", held, gotIDs, ids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
