package wizard

import (
	"context"
	"time"
)

// Mail is an e-mail gatecheck sends itself, on its way through the mail
// outbox: an escalation's summary to the team's address (MailHandoff), or
// the helpdesk's reply to the visitor's (MailReply). Its states are those
// of a webhook delivery (DeliveryPending, DeliveryDelivered,
// DeliveryFailed).
type Mail struct {
	ID     int64
	CaseID int64
	// Kind is MailHandoff or MailReply; empty is MailHandoff.
	Kind string
	// ToName is the team (empty for the visitor), To the e-mail address.
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

// The kinds of mail.
const (
	// MailHandoff is an escalation's summary to the team who can fix it.
	MailHandoff = "handoff"
	// MailReply is the helpdesk's word to the visitor: a reply, or the
	// case resolved.
	MailReply = "reply"
)

// MailStore keeps the mail outbox. A mail is written in the transaction of
// the case change it reports, so that it is sent if and only if the case
// was handed off, and a restart loses none.
//
// QueueMail returns ECONFLICT when the case has handed off to the same
// address already, and ENOTFOUND when there is no such case.
type MailStore interface {
	// QueueMail records, in one transaction, recs (the answer that ends
	// the escalation step), the case's move to escalated with its
	// case.escalated event, and m in the outbox, due at once.
	QueueMail(ctx context.Context, caseID int64, recs []StepRecord, m *Mail) error
	// AddReplyMail adds a reply for the visitor (as CaseStore.AddReply)
	// and, in the same transaction, m in the outbox, due at once.
	AddReplyMail(ctx context.Context, caseID int64, author, body string, m *Mail) (*Note, error)
	// SetStatusMail moves the case to status to (as CaseStore.SetStatus)
	// and, in the same transaction, queues m, only when the status
	// changed; queued says whether it did.
	SetStatusMail(ctx context.Context, caseID int64, to Status, actor string, m *Mail) (queued bool, err error)
	// SetStatusesMail moves many cases to status to (as
	// CaseStore.SetStatuses) and, in the same transaction, queues the
	// mails that mails makes of the cases that moved (those whose status
	// changed), each on its CaseID; it returns how many moved and how
	// many mails it queued.
	SetStatusesMail(ctx context.Context, caseIDs []int64, to Status, actor string, mails func(moved []int64) []*Mail) (changed, queued int, err error)
	// CaseMails returns a case's mails, oldest first.
	CaseMails(ctx context.Context, caseID int64) ([]*Mail, error)
	// DueMails returns pending mails due at now, oldest first.
	DueMails(ctx context.Context, now time.Time, limit int) ([]*Mail, error)
	// ClaimMails takes up to limit pending mails due at now for this
	// instance to send, oldest first: no other instance sharing the
	// database is given them before lease has passed (MailSent or
	// MailFailed end the claim; a claim whose instance died ends with
	// the lease, so a mail is sent at least once).
	ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Mail, error)
	// ReleaseMail gives back a claimed mail that was not tried, due at due.
	ReleaseMail(ctx context.Context, id int64, due time.Time) error
	// MailSent records a mail the server took.
	MailSent(ctx context.Context, id int64) error
	// MailFailed records a failed attempt: tried again at next, or given
	// up when next is zero.
	MailFailed(ctx context.Context, id int64, reason string, next time.Time) error
}
