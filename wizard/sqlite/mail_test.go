package sqlite

import (
	"context"
	"testing"

	"github.com/gatecheck/gatecheck/wizard"
)

// TestVisitorMail: the visitor's address is kept with the case; a reply's
// mail and a status change's mail are written with them or not at all (a
// refused reply, a status the case already has, queue nothing); a reply
// mail does not count as a hand-off, so the case can still be handed off
// to the same address.
func TestVisitorMail(t *testing.T) { onEngines(t, testVisitorMail) }

func testVisitorMail(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	c := &wizard.Case{URL: "https://shop.example/", Host: "shop.example", RequesterIP: "203.0.113.7", TreeVersion: "1", VisitorEmail: "ann@example.com"}
	if err := db.CreateCase(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Case(ctx, c.Token)
	if err != nil || got.VisitorEmail != "ann@example.com" {
		t.Fatalf("kept %q (%v)", got.VisitorEmail, err)
	}
	if err := db.SetVisitorEmail(ctx, c.ID, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Case(ctx, c.Token); got.VisitorEmail != "bob@example.com" {
		t.Errorf("after a change: %q", got.VisitorEmail)
	}
	if err := db.SetVisitorEmail(ctx, c.ID+100, "x@example.com"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("no such case: %v", err)
	}
	mail := func() *wizard.Mail {
		return &wizard.Mail{Kind: wizard.MailReply, To: "bob@example.com", Subject: "s", Body: "b"}
	}
	count := func() int {
		ms, err := db.CaseMails(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	if _, err := db.AddReplyMail(ctx, c.ID, "ann", "   ", mail()); wizard.ErrorCode(err) != wizard.EINVALID || count() != 0 {
		t.Errorf("an empty reply: %v, %d mails", err, count())
	}
	if n, err := db.AddReplyMail(ctx, c.ID, "ann", "Try again.", mail()); err != nil || !n.Public || count() != 1 {
		t.Errorf("a reply: %+v %v, %d mails", n, err, count())
	}
	if queued, err := db.SetStatusMail(ctx, c.ID, wizard.StatusResolved, "ann", mail()); err != nil || !queued || count() != 2 {
		t.Errorf("resolved: %v %v, %d mails", queued, err, count())
	}
	if queued, err := db.SetStatusMail(ctx, c.ID, wizard.StatusResolved, "ann", mail()); err != nil || queued || count() != 2 {
		t.Errorf("resolved again: %v %v, %d mails", queued, err, count())
	}
	ms, _ := db.CaseMails(ctx, c.ID)
	if ms[0].Kind != wizard.MailReply || ms[0].State != wizard.DeliveryPending {
		t.Errorf("the reply mail: %+v", ms[0])
	}
	if err := db.QueueMail(ctx, c.ID, nil, &wizard.Mail{ToName: "Support", To: "bob@example.com", Subject: "s", Body: "b"}); err != nil {
		t.Errorf("a hand-off to an address that had a reply mail: %v", err)
	}
	if ms, _ := db.CaseMails(ctx, c.ID); ms[2].Kind != wizard.MailHandoff {
		t.Errorf("the hand-off's kind %q", ms[2].Kind)
	}
}
