package wizard

import (
	"context"
	"time"
)

// Mail is an escalation's summary sent by gatecheck itself, on its way
// through the mail outbox to the team's address. Its states are those of a
// webhook delivery (DeliveryPending, DeliveryDelivered, DeliveryFailed).
type Mail struct {
	ID     int64
	CaseID int64
	// ToName is the team, To its e-mail address.
	ToName    string
	To        string
	Subject   string
	Body      string
	Actor     string
	State     string
	Attempts  int
	NextAt    time.Time
	LastError string
	SentAt    time.Time
	CreatedAt time.Time
}

// MailStore keeps the mail outbox. A mail is written in the transaction of
// the case change it reports, so that it is sent if and only if the case
// was handed off, and a restart loses none.
//
// QueueMail returns ECONFLICT when the case has a mail to the same address
// already, and ENOTFOUND when there is no such case.
type MailStore interface {
	// QueueMail records, in one transaction, recs (the answer that ends
	// the escalation step), the case's move to escalated with its
	// case.escalated event, and m in the outbox, due at once.
	QueueMail(ctx context.Context, caseID int64, recs []StepRecord, m *Mail) error
	// CaseMails returns a case's mails, oldest first.
	CaseMails(ctx context.Context, caseID int64) ([]*Mail, error)
	// DueMails returns pending mails due at now, oldest first.
	DueMails(ctx context.Context, now time.Time, limit int) ([]*Mail, error)
	// MailSent records a mail the server took.
	MailSent(ctx context.Context, id int64) error
	// MailFailed records a failed attempt: tried again at next, or given
	// up when next is zero.
	MailFailed(ctx context.Context, id int64, reason string, next time.Time) error
}
