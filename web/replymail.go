package web

import (
	"context"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// The visitor hears back by e-mail: a visitor may leave an address (on the
// form, or later on the case's page from the reporting browser), and when
// gatecheck has a mail server, a staff reply to the visitor, or staff
// setting the case resolved, queues a mail to it in the same transaction,
// through the outbox that sends escalations (retried, once, across
// restarts). The address is the visitor's own: only staff and the browser
// that reported the case see it.

// maxEmail bounds a visitor's address (RFC 5321's path limit).
const maxEmail = 254

// cleanVisitorEmail checks an address a visitor typed; empty is none.
func cleanVisitorEmail(raw string) (string, error) {
	addr := strings.TrimSpace(raw)
	if addr == "" {
		return "", nil
	}
	if !utf8.ValidString(addr) || utf8.RuneCountInString(addr) > maxEmail {
		return "", wizard.Errorf(wizard.EINVALID, "The e-mail address is too long (up to %d characters), or not valid text. Correct it, or leave the field empty.", maxEmail)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@')+1:], ".") {
		return "", wizard.Errorf(wizard.EINVALID, "“%s” is not an e-mail address gatecheck can write to: it should look like name@example.com. Correct it, or leave the field empty.", clip(addr, 100))
	}
	return a.Address, nil
}

// mailsVisitor reports whether a mail to c's visitor would be queued: the
// server has a mailer and an outbox, and the visitor left an address.
func (s *Server) mailsVisitor(c *wizard.Case) bool {
	return c.VisitorEmail != "" && s.cfg.Mailer != nil && s.mails != nil
}

// handleVisitorEmail answers POST /c/{token}/email: the reporting browser
// leaves, changes or removes the address the helpdesk's replies go to.
// Other browsers holding the link are refused: the address is not theirs.
func (s *Server) handleVisitorEmail(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	c, err := s.cfg.Store.Case(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !isReporter(r, c) {
		s.errorStatus(w, r, http.StatusForbidden, "Only the browser that reported this case can change where the helpdesk's answers go.")
		return
	}
	raw := r.PostForm.Get("email")
	addr, err := cleanVisitorEmail(raw)
	if err != nil {
		st, lerr := s.loadCaseAt(r.Context(), c.Token, s.baseURL(r), false)
		if lerr != nil {
			s.Error(w, r, lerr)
			return
		}
		if st.probing() {
			s.Error(w, r, err)
			return
		}
		v := s.stepView(r, st)
		if v.Email == nil { // no mail server: the form is shown to say why all the same
			v.Email = &templates.EmailForm{Action: "/c/" + c.Token + "/email", Email: c.VisitorEmail}
		}
		v.EmailError, v.EmailDraft = wizard.ErrorMessage(err), clip(raw, 4*maxEmail)
		s.render(w, r, http.StatusUnprocessableEntity, templates.Step(s.stepMeta(r, st), v))
		return
	}
	if err := s.cfg.Store.SetVisitorEmail(r.Context(), c.ID, addr); err != nil {
		s.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+c.Token+"#email", http.StatusSeeOther)
}

// emailForm is the reporting browser's form for its address, or nil for
// anyone else, and when gatecheck cannot send mail.
func (s *Server) emailForm(r *http.Request, c *wizard.Case) *templates.EmailForm {
	if !isReporter(r, c) || s.cfg.Mailer == nil || s.mails == nil {
		return nil
	}
	return &templates.EmailForm{Action: "/c/" + c.Token + "/email", Email: c.VisitorEmail}
}

// replyMailWord says, on the staff page, whether the visitor gets a reply
// by mail too.
func (s *Server) replyMailWord(c *wizard.Case) string {
	switch {
	case s.cfg.Mailer == nil || s.mails == nil:
		return "This gatecheck has no mail server set up (--smtp-url, --mail-from): the visitor sees a reply only on their case page."
	case c.VisitorEmail == "":
		return "The visitor left no e-mail address: they see a reply only on their case page."
	}
	return "The visitor also gets a reply, and the case set resolved, by e-mail at " + c.VisitorEmail + "."
}

// visitorMail is the mail that tells c's visitor what the helpdesk said
// (text, a reply; empty when only the status changed to status).
func (s *Server) visitorMail(r *http.Request, c *wizard.Case, status wizard.Status, text string) *wizard.Mail {
	link := s.baseURL(r) + "/c/" + c.Token
	loc := s.cfg.Settings.Location
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	subject := "Your report about " + c.Host + ": "
	if text != "" {
		subject += "the helpdesk replied"
		b.WriteString("The helpdesk replied to your report about " + c.URL + ":\n\n")
		b.WriteString(text)
		b.WriteString("\n\n")
	} else {
		subject += "resolved by the helpdesk"
		b.WriteString("The helpdesk marked your report about " + c.URL + " resolved.\n\n")
	}
	b.WriteString("Status: " + statusWords(status) + " (" + s.cfg.Now().In(loc).Format("2 January 2006, 15:04 MST") + ")\n")
	if c.Ticket != "" {
		b.WriteString("Ticket: " + c.Ticket + "\n")
	}
	b.WriteString("Case: " + link + "\n\n")
	b.WriteString("You get this because you left this address with gatecheck for the helpdesk's answers. To stop them, open the case from the browser you reported it with and clear the address.\n")
	return &wizard.Mail{Kind: wizard.MailReply, To: c.VisitorEmail, Subject: subject, Body: b.String(), Actor: staffFromName(r.Context())}
}

// staffFromName is the signed-in staff member's name, or "".
func staffFromName(ctx context.Context) string {
	if u := staffFrom(ctx); u != nil {
		return u.Name
	}
	return ""
}

// statusWords says a case status to the visitor.
func statusWords(st wizard.Status) string {
	switch st {
	case wizard.StatusResolved:
		return "resolved"
	case wizard.StatusEscalated:
		return "escalated"
	case wizard.StatusUnresolved:
		return "closed without a fix"
	}
	return "open"
}

// addReply adds a staff reply to the visitor, with its mail when the
// visitor left an address and gatecheck can send.
func (s *Server) addReply(r *http.Request, c *wizard.Case, author, body string) error {
	if !s.mailsVisitor(c) {
		_, err := s.cfg.Store.AddReply(r.Context(), c.ID, author, body)
		return err
	}
	m := s.visitorMail(r, c, c.Status, strings.TrimSpace(body))
	_, err := s.mails.AddReplyMail(r.Context(), c.ID, author, body, m)
	if err == nil {
		s.wakeMail()
	}
	return err
}

// setStatus sets a case's status for staff; resolved tells the visitor by
// mail when they left an address and gatecheck can send.
func (s *Server) setStatus(r *http.Request, c *wizard.Case, to wizard.Status, actor string) error {
	if to != wizard.StatusResolved || !s.mailsVisitor(c) {
		return s.cfg.Store.SetStatus(r.Context(), c.ID, to, actor)
	}
	queued, err := s.mails.SetStatusMail(r.Context(), c.ID, to, actor, s.visitorMail(r, c, to, ""))
	if queued {
		s.wakeMail()
	}
	return err
}

// setStatuses sets many cases' status for staff (an incident's bulk
// change); resolved tells each visitor who left an address once, in the
// transaction of the change: one mail per address, naming every case of
// theirs that moved, queued on the first of them.
func (s *Server) setStatuses(r *http.Request, ids []int64, to wizard.Status, actor string) (int, error) {
	if to != wizard.StatusResolved || !s.canMailVisitors() {
		return s.cfg.Store.SetStatuses(r.Context(), ids, to, actor)
	}
	cases := make(map[int64]*wizard.Case, len(ids))
	for _, id := range ids {
		c, err := s.cfg.Store.CaseByID(r.Context(), id)
		if err != nil {
			return 0, err
		}
		cases[id] = c
	}
	changed, queued, err := s.mails.SetStatusesMail(r.Context(), ids, to, actor, func(moved []int64) []*wizard.Mail {
		var order []string
		byAddr := map[string][]*wizard.Case{}
		for _, id := range moved {
			c := cases[id]
			if c == nil || c.VisitorEmail == "" {
				continue
			}
			key := strings.ToLower(c.VisitorEmail)
			if _, seen := byAddr[key]; !seen {
				order = append(order, key)
			}
			byAddr[key] = append(byAddr[key], c)
		}
		mails := make([]*wizard.Mail, 0, len(order))
		for _, key := range order {
			m := s.visitorMailMany(r, byAddr[key], to)
			m.CaseID = byAddr[key][0].ID
			mails = append(mails, m)
		}
		return mails
	})
	if queued > 0 {
		s.wakeMail()
	}
	return changed, err
}

// visitorMailMany is the mail that tells a visitor the status of their
// cases cs changed to status: visitorMail's, for one case.
func (s *Server) visitorMailMany(r *http.Request, cs []*wizard.Case, status wizard.Status) *wizard.Mail {
	if len(cs) == 1 {
		return s.visitorMail(r, cs[0], status, "")
	}
	loc := s.cfg.Settings.Location
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	b.WriteString("The helpdesk marked your reports resolved:\n\n")
	for _, c := range cs {
		b.WriteString("- " + c.URL)
		if c.Ticket != "" {
			b.WriteString(" (ticket " + c.Ticket + ")")
		}
		b.WriteString("\n  Case: " + s.baseURL(r) + "/c/" + c.Token + "\n")
	}
	b.WriteString("\nStatus: " + statusWords(status) + " (" + s.cfg.Now().In(loc).Format("2 January 2006, 15:04 MST") + ")\n\n")
	b.WriteString("You get this because you left this address with gatecheck for the helpdesk's answers. To stop them, open a case from the browser you reported it with and clear the address.\n")
	return &wizard.Mail{Kind: wizard.MailReply, To: cs[0].VisitorEmail, Subject: "Your reports about " + cs[0].Host + ": resolved by the helpdesk", Body: b.String(), Actor: staffFromName(r.Context())}
}

// canMailVisitors reports whether gatecheck can send visitors the
// helpdesk's answers: the forms then ask for an address.
func (s *Server) canMailVisitors() bool {
	return s.cfg.Mailer != nil && s.mails != nil
}
