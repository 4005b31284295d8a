package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSignals: a signal sent by one instance is heard by every instance
// listening on the database, the sender's own included; a signal sent in
// a transaction is heard once it commits, and never when it rolls back;
// a listener that stopped hears nothing more.
func TestSignals(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		ctx := context.Background()
		dbs := MustOpenShared(t, 2)
		a, b := dbs[0], dbs[1]
		heardA, stopA := a.Listen("probe.queued")
		defer stopA()
		heardB, stopB := b.Listen("probe.queued")
		defer stopB()
		other, stopOther := b.Listen("case")
		defer stopOther()

		if err := a.Notify(ctx, "probe.queued", "17"); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]<-chan string{"the sender": heardA, "the other instance": heardB} {
			if got := next(t, ch); got != "17" {
				t.Errorf("%s heard %q, want 17", name, got)
			}
		}

		rolledBack := errors.New("rolled back")
		err := a.inTx(ctx, func(tx *txn) error {
			if err := tx.notify(ctx, "probe.queued", "18"); err != nil {
				return err
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		if err := a.inTx(ctx, func(tx *txn) error { return tx.notify(ctx, "probe.queued", "19") }); err != nil {
			t.Fatal(err)
		}
		// Signals arrive in order: the first heard after the rollback is
		// the committed one.
		for _, ch := range []<-chan string{heardA, heardB} {
			if got := next(t, ch); got != "19" {
				t.Errorf("after a rolled back and a committed transaction, heard %q, want 19", got)
			}
		}
		select {
		case got := <-other:
			t.Errorf("a listener of another topic heard %q", got)
		default:
		}

		stopB()
		if err := a.Notify(ctx, "probe.queued", "20"); err != nil {
			t.Fatal(err)
		}
		if got := next(t, heardA); got != "20" {
			t.Errorf("heard %q, want 20", got)
		}
		if _, open := <-heardB; open {
			t.Error("a listener that stopped still hears signals")
		}
	})
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no signal within 10 s")
		return ""
	}
}

// TestSignalsAfterLostConnection: when PostgreSQL drops the connection
// that listens, the store connects again and tells its listeners to look
// again (""), since signals sent meanwhile are lost; signals sent after
// are heard.
func TestSignalsAfterLostConnection(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		dbs := MustOpenShared(t, 2)
		heard, stop := dbs[0].Listen("case")
		defer stop()
		var n int
		if err := dbs[1].write.QueryRowContext(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("dropping the listening connection: %d dropped, %v", n, err)
		}
		if got := next(t, heard); got != "" {
			t.Fatalf("after the connection was lost, heard %q, want \"\" (look again)", got)
		}
		if err := dbs[1].Notify(ctx, "case", "5"); err != nil {
			t.Fatal(err)
		}
		if got := next(t, heard); got != "5" {
			t.Errorf("heard %q, want 5", got)
		}
	})
}
