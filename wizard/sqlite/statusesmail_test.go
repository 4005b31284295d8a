package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestSetStatusesMail: many cases' status and their mails change in one
// transaction: mails is asked about the cases that moved only (not one
// that already had the status), each mail is queued on its own case, and
// a refused change (a case that does not exist) queues nothing.
func TestSetStatusesMail(t *testing.T) { onEngines(t, testSetStatusesMail) }

func testSetStatusesMail(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	a, b, done := newCase(t, db, "https://shop.example/", ""), newCase(t, db, "https://shop.example/cart", ""), newCase(t, db, "https://shop.example/x", "")
	if err := db.SetStatus(ctx, done.ID, wizard.StatusResolved, "ann"); err != nil {
		t.Fatal(err)
	}
	mailsOn := func(c *wizard.Case) int {
		t.Helper()
		ms, err := db.CaseMails(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	var asked []int64
	one := func(moved []int64) []*wizard.Mail {
		asked = append([]int64(nil), moved...)
		return []*wizard.Mail{{Kind: wizard.MailReply, CaseID: moved[len(moved)-1], To: "pat@example.net", Subject: "s", Body: "b"}}
	}
	// A case that does not exist: nothing changes, nothing is queued.
	if _, _, err := db.SetStatusesMail(ctx, []int64{a.ID, b.ID + 1000}, wizard.StatusResolved, "ann", one); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Fatalf("a missing case: %v", err)
	}
	if got, _ := db.Case(ctx, a.Token); got.Status != wizard.StatusOpen || mailsOn(a) != 0 {
		t.Errorf("after a refused change: %s, %d mails", got.Status, mailsOn(a))
	}
	changed, queued, err := db.SetStatusesMail(ctx, []int64{a.ID, done.ID, b.ID}, wizard.StatusResolved, "ann", one)
	if err != nil || changed != 2 || queued != 1 {
		t.Fatalf("changed %d, queued %d (%v); want 2, 1", changed, queued, err)
	}
	if !slices.Equal(asked, []int64{a.ID, b.ID}) {
		t.Errorf("mails was asked about %v; want the cases that moved, %v", asked, []int64{a.ID, b.ID})
	}
	if mailsOn(a) != 0 || mailsOn(b) != 1 || mailsOn(done) != 0 {
		t.Errorf("mails on a %d, b %d, done %d; want the one on b", mailsOn(a), mailsOn(b), mailsOn(done))
	}
	// Nothing moves: mails is not asked, nothing is queued.
	asked = nil
	if changed, queued, err := db.SetStatusesMail(ctx, []int64{a.ID, b.ID}, wizard.StatusResolved, "ann", one); err != nil || changed != 0 || queued != 0 || asked != nil {
		t.Errorf("again: changed %d, queued %d, asked %v (%v)", changed, queued, asked, err)
	}
}
