package web

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/mailer"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// Hand-off by mail: at an escalation step whose contact is an e-mail
// address, a server with a mailer offers "Send to {team}". The press
// records, in one transaction, the answer that ends the step, the case's
// move to escalated (with its case.escalated event) and the mail in the
// outbox; a background loop sends due mails and retries failures with
// backoff, so a mail server that is down delays the mail and a restart
// loses none. No request waits for the mail server.

// MailSender sends one e-mail; *mailer.Sender is the real one.
type MailSender interface {
	Send(ctx context.Context, m mailer.Message) error
	// From is the sender's address.
	From() string
}

// mailBackoff are the waits after a mail's failed attempts; after the
// last, the mail has failed (about 16 hours after the hand-off).
var mailBackoff = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}

// mailActor is who sends gatecheck's mail, on the timeline.
const mailActor = "gatecheck mail"

// mailConcurrency is how many mails are sent at once.
const mailConcurrency = 2

// mailBatch is how many due mails an instance claims at once, and
// mailLease how long they stay its own: the batch's attempts, a pair at a
// time, at the mail server's 30 s timeout, with room to spare.
const (
	mailBatch = 8
	mailLease = (mailBatch/mailConcurrency + 1) * 30 * time.Second * 2
)

// mailLoop sends due mails every MailTick, and at once when one is queued,
// until Close.
func (s *Server) mailLoop() {
	s.loops.Go(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		t := time.NewTicker(s.cfg.MailTick)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			case <-s.mailWake:
			}
			s.sendDueMails(ctx)
		}
	})
}

// wakeMail tells the mail loop a mail is due now.
func (s *Server) wakeMail() {
	select {
	case s.mailWake <- struct{}{}:
	default:
	}
}

// sendDueMails sends the mails due now, a few at a time.
func (s *Server) sendDueMails(ctx context.Context) {
	// Claimed, so that of several instances on one database one sends
	// each mail; the lease covers the batch's attempts at the mail
	// server's timeout, after which another instance may try again.
	due, err := s.mails.ClaimMails(ctx, s.cfg.Now(), mailLease, mailBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("reading due mails", "err", err)
		}
		return
	}
	sem := make(chan struct{}, mailConcurrency)
	var wg sync.WaitGroup
	for _, m := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.sendMail(ctx, m)
		})
	}
	wg.Wait()
}

// sendMail makes one attempt of a mail and records how it went.
func (s *Server) sendMail(ctx context.Context, m *wizard.Mail) {
	err := s.cfg.Mailer.Send(ctx, mailer.Message{ToName: m.ToName, To: m.To, Subject: m.Subject, Body: m.Body,
		ID: "gatecheck.mail." + strconv.FormatInt(m.ID, 10) + "." + strconv.FormatInt(m.CreatedAt.UnixNano(), 36), Date: m.CreatedAt})
	if ctx.Err() != nil {
		// Shutting down: the attempt does not count, and the mail is
		// given back for another instance, or this one when it is back.
		if err := s.mails.ReleaseMail(context.WithoutCancel(ctx), m.ID, s.cfg.Now()); err != nil {
			s.log.Error("giving back a mail", "mail", m.ID, "err", err)
		}
		return
	}
	if err == nil {
		if err := s.mails.MailSent(context.Background(), m.ID); err != nil {
			s.log.Error("recording a sent mail", "mail", m.ID, "err", err)
		}
		s.metrics.mail("delivered")
		s.log.Info("mail sent", "mail", m.ID, "kind", m.Kind, "case", m.CaseID, "to", m.To)
		return
	}
	reason := clip(err.Error(), 300)
	var next time.Time
	if m.Attempts < len(s.cfg.MailBackoff) {
		next = s.cfg.Now().Add(s.cfg.MailBackoff[m.Attempts])
		s.metrics.mail("retry")
		s.log.Warn("the mail server did not take a mail; it is tried again", "mail", m.ID, "kind", m.Kind, "case", m.CaseID,
			"attempt", m.Attempts+1, "next", next, "err", reason)
	} else {
		s.metrics.mail("failed")
		s.log.Error("a mail failed for good", "mail", m.ID, "kind", m.Kind, "case", m.CaseID, "to", m.To, "err", reason)
	}
	if err := s.mails.MailFailed(context.Background(), m.ID, reason, next); err != nil {
		s.log.Error("recording a failed mail", "mail", m.ID, "err", err)
	}
}

// canMail reports whether gatecheck can send an escalation step's summary
// itself: it has a mailer, an outbox, and the contact is an e-mail address.
func (s *Server) canMail(e *wizard.Escalation) bool {
	return e != nil && e.Email != "" && s.cfg.Mailer != nil && s.mails != nil
}

// handleSendMail answers POST /c/{token}/send: gatecheck sends the
// escalation step's summary to the team's address, and the case moves on
// as handed off.
func (s *Server) handleSendMail(w http.ResponseWriter, r *http.Request) {
	st, ok := s.postedStep(w, r)
	if !ok {
		return
	}
	e := st.step.Escalation
	node := r.PostForm.Get("node")
	switch {
	case node != st.step.Node || st.step.Done || e == nil:
		s.answerRefused(w, r, st, "This case is no longer at that step (it may have moved on in another window). This is where it is now.")
		return
	case !s.canMail(e):
		s.answerRefused(w, r, st, "gatecheck cannot send this itself: it has no mail server set up, or no e-mail address for "+e.Team+". Send the summary yourself.")
		return
	}
	now := s.cfg.Now()
	next := append(st.answers[:len(st.answers):len(st.answers)], wizard.Answer{Node: node, Choice: wizard.ChoiceSent, At: now})
	if _, err := st.tree.Next(s.cfg.Settings, st.facts, next); err != nil {
		s.answerRefused(w, r, st, "This case is no longer at that step. This is where it is now.")
		return
	}
	recs := wizard.RecordsFor(wizard.ReplayAnswers(st.log), next, "", now)
	m := &wizard.Mail{ToName: e.Team, To: e.Email, Subject: e.Subject, Body: e.Body, Actor: "visitor"}
	err := s.mails.QueueMail(r.Context(), st.c.ID, recs, m)
	if wizard.ErrorCode(err) == wizard.ECONFLICT {
		s.answerRefused(w, r, st, wizard.ErrorMessage(err))
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	s.wakeMail()
	if err := s.watchUnresolved(r.Context(), wizard.StatusEscalated, st.c.ID); err != nil {
		s.log.Error("starting the watch of an escalated case", "case", st.c.ID, "err", err)
	}
	http.Redirect(w, r, "/c/"+st.c.Token, http.StatusSeeOther)
}

// mailRows say where a case's mails stand, for its pages.
func (s *Server) mailRows(st *caseState) []templates.MailRow {
	loc := s.cfg.Settings.Location
	if loc == nil {
		loc = time.UTC
	}
	var out []templates.MailRow
	for _, m := range st.mails {
		if m.Kind == wizard.MailReply {
			continue // to the visitor's own address: not for everyone with the link
		}
		out = append(out, templates.MailRow{ToName: m.ToName, To: m.To, Subject: m.Subject, State: m.State, Attempts: m.Attempts,
			QueuedAt: m.CreatedAt.In(loc), SentAt: m.SentAt.In(loc), NextAt: m.NextAt.In(loc), LastError: m.LastError})
	}
	return out
}

// mailTimeline is a case's mails as timeline entries.
func mailTimeline(mails []*wizard.Mail) []templates.TimelineEntry {
	var out []templates.TimelineEntry
	for _, m := range mails {
		to := m.ToName + " <" + m.To + ">"
		what := "Escalation summary queued by e-mail to " + to + ": "
		if m.Kind == wizard.MailReply {
			to = "the visitor <" + m.To + ">"
			what = "Mail to the visitor <" + m.To + "> queued: "
		}
		out = append(out, templates.TimelineEntry{At: m.CreatedAt, Kind: "mail", Actor: mailActor, Text: what + m.Subject})
		switch m.State {
		case wizard.DeliveryDelivered:
			out = append(out, templates.TimelineEntry{At: m.SentAt, Kind: "mail", Actor: mailActor,
				Text: "E-mail to " + to + " taken by the mail server (attempt " + strconv.Itoa(m.Attempts) + ")"})
		case wizard.DeliveryFailed:
			out = append(out, templates.TimelineEntry{At: m.NextAt, Kind: "mail", Actor: mailActor,
				Text: "E-mail to " + to + " given up after " + strconv.Itoa(m.Attempts) + " attempts: " + m.LastError})
		default:
			if m.Attempts > 0 {
				out = append(out, templates.TimelineEntry{At: m.NextAt, Kind: "mail", Actor: mailActor,
					Text: "E-mail to " + to + " not taken yet (" + strconv.Itoa(m.Attempts) + " attempts; the last: " + m.LastError + "); next attempt at this time"})
			}
		}
	}
	return out
}
