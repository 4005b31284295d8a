// Package templates holds gatecheck's HTML, as templ components, and the
// view models the pages need.
package templates

import (
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/a-h/templ"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/wizard"
)

// PageMeta is what every page's layout needs.
type PageMeta struct {
	Title string
	// Refresh, when positive, reloads the page after that many seconds for
	// browsers without JavaScript.
	Refresh int
	// Staff is the signed-in staff member's name, if any, and Admin
	// whether they are an admin (who sees the admin pages' links).
	Staff string
	Admin bool
	Wide  bool
	// Description is the page's finding in one line, for the link
	// previews chat apps and ticket systems show (Open Graph and Twitter
	// card tags); empty: the page has none to give.
	Description string
	// Help is where a visitor's "Help" link goes (the support contact: a
	// mailto: or web address, or gatecheck's page showing it); empty: no
	// contact is set, and no link is shown.
	Help templ.SafeURL
}

// PageTitle is a case page's title: the host and what was found there,
// "shop.example.com: the site's server is down", so that links pasted
// side by side in a ticket or a chat tell apart.
func PageTitle(host, finding string) string {
	finding = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(finding), "."))
	switch {
	case host == "":
		return finding
	case finding == "":
		return host
	}
	return host + ": " + lowerFirst(finding)
}

// lowerFirst lowers the first letter of s unless its first word is an
// abbreviation ("DNS", "HTTPS") or a name that keeps its capital.
func lowerFirst(s string) string {
	word, _, _ := strings.Cut(s, " ")
	if len(word) > 1 && strings.ToUpper(word) == word {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// HelpLink is where a visitor's "Help" link goes for the support contact
// the operator set: a mailto: link for an e-mail address, the address
// itself for a web page, and otherwise gatecheck's own page showing the
// contact (page); empty without a contact.
func HelpLink(contact, page string) templ.SafeURL {
	contact = strings.TrimSpace(contact)
	if contact == "" {
		return ""
	}
	if u, err := url.Parse(contact); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !strings.ContainsAny(contact, " \t") {
		return templ.SafeURL(u.String())
	}
	if a, err := mail.ParseAddress(contact); err == nil && a.Name == "" && !strings.ContainsAny(contact, "<>") {
		return templ.SafeURL("mailto:" + a.Address)
	}
	if strings.HasPrefix(strings.ToLower(contact), "mailto:") {
		if a, err := mail.ParseAddress(contact[len("mailto:"):]); err == nil {
			return templ.SafeURL("mailto:" + a.Address)
		}
	}
	return templ.SafeURL(page)
}

// HelpView is the page that shows the support contact when it is
// neither an e-mail nor a web address ("the IT helpdesk, extension 4711").
type HelpView struct {
	Contact string
}

// HomeView is the start page's form.
type HomeView struct {
	URL, Ticket, Error string
	// Wait, when set, says the visitor has to wait before starting
	// another check ("you can start another in 40 seconds"); the form
	// keeps what they typed.
	Wait string
	// Email is the visitor's address for the helpdesk's answers, asked
	// for when AskEmail (gatecheck can send mail).
	Email    string
	AskEmail bool
}

// ProbingView is the page shown while the probes run.
type ProbingView struct {
	Token, URL, Queue string
	Checks            []probes.Check
	Notice            *HostNotice // the helpdesk's notice for the host, if any
	// Check is the browser's own try of the URL, made while the server's
	// probes run; nil when the run has its browser view already.
	Check *BrowserCheck
	// Title, when set, heads the page instead of "Checking {URL}": what
	// is being checked, such as whether a fix worked.
	Title string
	// Progress is where the check stands, for its plain steps.
	Progress ProbingProgress
}

// BrowserCheck is the visitor's browser trying the case's URL itself, as
// static/app.js does on a case page that carries it.
type BrowserCheck struct {
	RunID     int64  // the probe run the result is for
	URL       string // what the browser fetches
	Post      string // where it posts the result
	TimeoutMS int
	// Skip is why the browser does not try (it posts that instead), and
	// SkipText the same for people; empty when it tries.
	Skip, SkipText string
	// Reload makes the page reload once the result is stored: the step it
	// shows depends on it.
	Reload bool
}

// BrowserNote says plainly what the browser's check can and cannot tell.
const BrowserNote = "Your browser's check can tell only whether the site answered, not what it answered: an error page counts as an answer. " +
	"It cannot try an http:// site from this https:// page, and to it a certificate warning looks the same as no connection."

// StepView is one wizard step of a case.
type StepView struct {
	// OriginLine says in one plain line what the helpdesk found reaching
	// the site's own server directly; empty when it did not.
	OriginLine string
	Case       *wizard.Case
	Link       string // the case's full link
	Step       *wizard.Step
	Report     *probes.Report
	// Browser is the visitor's browser's view in force (nil: none), and
	// Check the try the page makes when the latest run has none.
	Browser *wizard.Vantage
	Check   *BrowserCheck
	// Claim, when set, is where a browser posts "this is my browser" for
	// a case no browser reported (one a ticket system opened): only the
	// reporter's browser checks the site.
	Claim string
	// Agents are the agents' views of the case, and where their jobs stand.
	Agents []AgentRow
	// Revisit is set when the person is changing an earlier answer.
	Revisit bool
	Error   string
	// CanGoBack is set when there is an answer to take back.
	CanGoBack bool
	// CheckedAt is when the report was gathered; Shared says it was made
	// for another report of the same site (joined or reused).
	CheckedAt time.Time
	Shared    bool
	Now       time.Time
	Notice    *HostNotice // the helpdesk's notice for the host, if any
	// Replies are the helpdesk's notes meant for the visitor, oldest
	// first; HelpdeskStatus says where the helpdesk put the case, when a
	// staff member changed its status after the visitor's own walk ended
	// ("Resolved by the helpdesk", at HelpdeskAt); empty otherwise.
	Replies        []wizard.Note
	HelpdeskStatus string
	HelpdeskAt     time.Time // when the helpdesk gave that status
	// HelpdeskDone is set when the helpdesk resolved or closed the case
	// after the visitor's last answer, while the walk still asks a
	// question: the page says so first, and offers the question folded
	// away, for a visitor whose site still does not work.
	HelpdeskDone bool
	// CanSend is set when gatecheck can send the escalation's summary
	// itself (a mail server is set up and the contact is an e-mail
	// address), from MailFrom; Mails are what it sent for the case.
	CanSend  bool
	MailFrom string
	Mails    []MailRow
	// Email, for the reporting browser only and when gatecheck can send
	// mail, is its form for the address the helpdesk's answers go to;
	// EmailError says why the address typed, EmailDraft, was refused.
	Email      *EmailForm
	EmailError string
	EmailDraft string
}

// EmailForm is where the visitor leaves or changes their address.
type EmailForm struct {
	Action string // where the form posts
	Email  string // the address kept, or empty
}

// MailRow is an escalation summary gatecheck sent, and where it stands
// (its times in the time zone of the escalation summaries).
type MailRow struct {
	ToName, To, Subject string
	State               string // wizard.DeliveryPending, …Delivered, …Failed
	Attempts            int
	QueuedAt, SentAt    time.Time
	NextAt              time.Time
	LastError           string
}

// MailTo is a mailto: link to the escalation's e-mail address with its
// subject and body filled in (RFC 6068: percent-encoded, line breaks as
// CRLF).
func MailTo(e *wizard.Escalation) templ.SafeURL {
	enc := func(s string) string {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
		return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	}
	return templ.URL("mailto:" + e.Email + "?subject=" + enc(e.Subject) + "&body=" + enc(e.Body))
}

// MailState says in words where a mail stands.
func MailState(m MailRow) string {
	switch m.State {
	case wizard.DeliveryDelivered:
		return "the mail server took it at " + m.SentAt.Format("15:04 MST") + "."
	case wizard.DeliveryFailed:
		return "the mail server refused it too many times; gatecheck has given up. Send the summary yourself."
	}
	if m.Attempts == 0 {
		return "it is being sent."
	}
	return fmt.Sprintf("the mail server has not taken it yet (%d attempts); gatecheck tries again at %s.", m.Attempts, m.NextAt.Format("15:04 MST"))
}

// LoginView is the staff sign-in form.
type LoginView struct {
	Name, Error, Next string
}

// CaseListView is the staff case list.
type CaseListView struct {
	Cases                                          []*wizard.Case
	Total, Page, Pages                             int
	More                                           bool // Total is a lower bound
	Status, Verdict, Host, Ticket, From, To, Query string
	PrevURL, NextURL                               string
	Error                                          string
}

// TimelineEntry is one event in a case's history.
type TimelineEntry struct {
	At    time.Time
	Kind  string // step, back, note, status, probe, vantage
	Actor string
	Text  string
}

// StaffCaseView is a case as staff see it.
type StaffCaseView struct {
	Case     *wizard.Case
	Link     string
	Timeline []TimelineEntry
	Latest   *wizard.ProbeRun
	Changes  []string // what changed between the last two probe runs
	Step     *wizard.Step
	Notes    []wizard.Note
	Error    string
	Statuses []wizard.Status
	TreeNote string          // set when the case walks an older tree version
	Browser  *wizard.Vantage // the visitor's browser's view in force
	Draft    string          // a refused note, given back to edit
	// ReplyMail says whether the visitor gets a reply by e-mail too.
	ReplyMail string
	// Agents are the agents' views of the case and where their jobs
	// stand; AgentNames the agents a re-run may ask (none: no form).
	Agents     []AgentRow
	AgentNames []string
	// Origin is the origin's view, reached directly (nil: never asked).
	Origin *OriginView
}

// OriginView is the origin of a case's site reached directly, beside the
// public view: what it answered and what the pair means.
type OriginView struct {
	Address string
	At      time.Time
	Report  *probes.Report
	// Pair says what the edge and the origin answered and what that
	// means; empty when the public check of the same run is not done.
	Pair string
}

// AgentRow is one agent's view of a case's URL, or where its job stands.
type AgentRow struct {
	Name string
	// State is done (Text is what it saw), waiting, working, offline,
	// expired or refused (never sent: gatecheck's server refused the
	// address); Text says so.
	State string
	Text  string
	// Report is the agent's diagnosis when it is done, for the "where it
	// fails" diagram; nil otherwise.
	Report *probes.Report
}

// AgentsView is the staff page of agents.
type AgentsView struct {
	Agents []AgentLine
}

// AgentLine is one agent on the staff page.
type AgentLine struct {
	Name     string
	State    string // online, offline or revoked
	LastSeen string // "never" or a time
	From     string // the address it was last seen from
	Version  string
}

// WebhooksView is the staff page of webhook destinations and deliveries;
// URL and Template keep what was typed in a refused form.
type WebhooksView struct {
	Webhooks      []*wizard.Webhook
	Deliveries    []*wizard.Delivery
	Events        []string
	BaseURL       string
	Error         string
	URL, Template string
	// Admin is set for an admin, who may add and disable destinations.
	Admin bool
}

func joinEvents(events []string) string { return strings.Join(events, ", ") }

// UsersView is the admin page of staff accounts.
type UsersView struct {
	Users []UserLine
	Roles []wizard.Role
	// Done says what the last change did; Error why one was refused.
	Done, Error string
	// Name and Role are the add form as typed (the password is never sent
	// back).
	Name string
	Role wizard.Role
}

// UserLine is one account on the users page.
type UserLine struct {
	Name    string
	Role    wizard.Role
	Created string
	// Self marks the signed-in admin, who changes neither their own role
	// nor their account here.
	Self bool
}

// APIKeysView is the admin page of API keys.
type APIKeysView struct {
	Keys        []APIKeyLine
	Done, Error string
	Name        string // the add form as typed
	// NewName and NewToken are the key just made, shown this once.
	NewName, NewToken string
}

// APIKeyLine is one API key on its page.
type APIKeyLine struct {
	Name, Created, By, LastUsed string
	Revoked                     string // when, or "" for a live key
}

// ErrorView is an error page.
type ErrorView struct {
	Status  int
	Message string
	// Back, when set, is where the page's way back leads instead of the
	// start (BackText says where: "Back to your case").
	Back, BackText string
}

// Since says how long ago t was, for people.
func Since(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.Format("2 Jan 2006")
}

// Ago says how long before now t was, to the second under a minute:
// "23 s ago". static/app.js keeps it current on the page.
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.UTC().Format("2 Jan 2006")
}

// Times says how many times: once, twice, 3 times.
func Times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// Clock is a time of day for people, in UTC, with the date when it is
// not today's.
func Clock(t time.Time) string {
	t = t.UTC()
	if t.Format(time.DateOnly) != time.Now().UTC().Format(time.DateOnly) {
		return t.Format("2 Jan 15:04 UTC")
	}
	return t.Format("15:04 UTC")
}

// When formats a time fully, in UTC.
func When(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// GatewayLabel names a gateway for people.
func GatewayLabel(name string) string {
	if name == "" {
		return "—"
	}
	return probes.GatewayLabel(name)
}

// browserCheckAttrs are the data attributes static/app.js reads to make
// the check.
func browserCheckAttrs(c *BrowserCheck) templ.Attributes {
	a := templ.Attributes{
		"data-vantage-post": c.Post, "data-vantage-run": strconv.FormatInt(c.RunID, 10),
		"data-vantage-url": c.URL, "data-vantage-timeout": strconv.Itoa(c.TimeoutMS),
	}
	if c.Skip != "" {
		a["data-vantage-skip"] = c.Skip
	}
	if c.Reload {
		a["data-vantage-reload"] = "true"
	}
	return a
}

// ServerSeen says in a few words what gatecheck's server saw of the URL:
// the final answer and who gave it, or where the request stopped, in words
// for people (the checks' own details are in the evidence).
func ServerSeen(r *probes.Report) string {
	if r == nil {
		return "Checking…"
	}
	if r.Verdict.Code == probes.Intermittent {
		// One answer is not what the server saw: some requests failed.
		return wizard.VisitorWords(r, time.Now()).Headline
	}
	if h := r.HTTP.Final(); h != nil && h.Status > 0 && r.HTTP.Error == "" {
		s := "Answered " + strconv.Itoa(h.Status)
		if t := http.StatusText(h.Status); t != "" {
			s += " " + t
		}
		if r.Gateway.Name != "" {
			s += " from " + GatewayLabel(r.Gateway.Name)
		}
		return s
	}
	if r.HTTP != nil {
		if s := stoppedAt(r); s != "" {
			return s
		}
	}
	return wizard.VisitorWords(r, time.Now()).Headline
}

// certTrouble says what is wrong with a certificate, by the TLS probe's
// problem.
var certTrouble = map[string]string{
	"expired":           "the certificate has expired",
	"not_yet_valid":     "the certificate is not valid yet",
	"hostname_mismatch": "the certificate is for another name",
	"self_signed":       "the certificate is not from a trusted authority",
	"incomplete_chain":  "the certificate's chain of trust is incomplete",
	"untrusted":         "the certificate is not trusted",
	"handshake_failed":  "the secure greeting failed",
}

// stoppedAt says where the main request stopped, and why, in words.
func stoppedAt(r *probes.Report) string {
	h := r.HTTP
	cert := func(fallback string) string {
		if r.TLS != nil && certTrouble[r.TLS.Problem] != "" {
			return "No secure connection: " + certTrouble[r.TLS.Problem]
		}
		return "No secure connection: " + fallback
	}
	switch h.ErrorKind {
	case probes.KindBlocked:
		return "Not checked: the address is not on the public internet"
	case probes.KindNXDomain:
		return "Could not find the site's name: it does not exist"
	case probes.KindDNS:
		return "Could not find the site's name"
	case probes.KindRefused:
		return "Could not connect: the connection was refused"
	case probes.KindUnreachable:
		return "Could not connect: no way through the network"
	case probes.KindTimeout:
		switch h.Phase {
		case "dns":
			return "Could not find the site's name in time"
		case "connect":
			return "Could not connect: no reply in time"
		case "tls":
			return "No secure connection: the server did not finish it in time"
		}
		return "Connected, but no answer came in time"
	case probes.KindReset:
		if h.Phase == "tls" {
			return "No secure connection: the server cut it off"
		}
		return "Connected, then the server cut the connection"
	case probes.KindEOF:
		if h.Phase == "tls" {
			return "No secure connection: the server hung up"
		}
		return "Connected, then the server hung up without answering"
	case probes.KindCertExpired:
		return cert("the certificate has expired")
	case probes.KindCertHostname:
		return cert("the certificate is for another name")
	case probes.KindCertUnknown:
		return cert("the certificate is not trusted")
	case probes.KindTLS:
		return cert("the secure greeting failed")
	case probes.KindProtocol:
		return "Connected, but the answer was garbled"
	case probes.KindRedirectLoop:
		return "Sent round in circles by redirects"
	case "":
		return ""
	}
	return "No answer"
}

// BrowserSeen says what the visitor's browser saw of the URL: its view v,
// or, without one, what the page's check c will do.
func BrowserSeen(v *wizard.Vantage, c *BrowserCheck) string {
	switch {
	case v != nil:
		return upperFirst(v.Detail)
	case c != nil && c.Skip != "":
		return upperFirst(c.SkipText)
	case c != nil:
		return "Not checked: the check needs JavaScript"
	}
	return "Not checked"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func verdictClass(r *probes.Report) string {
	if r != nil && r.Verdict.Code == probes.Healthy {
		return "card verdict healthy"
	}
	return "card verdict"
}

func statusClass(s probes.Status) string { return "status-" + string(s) }

func caseURL(token string, parts ...string) string {
	return "/c/" + token + strings.Join(parts, "")
}

func staffCaseURL(token string, parts ...string) string {
	return "/staff/c/" + token + strings.Join(parts, "")
}

// finalHop returns a report's last response, or nil.
func finalHop(r *probes.Report) *probes.Hop {
	if r == nil {
		return nil
	}
	return r.HTTP.Final()
}

func itoa(n int) string { return fmt.Sprint(n) }

func joinNames(c probes.Certificate) string {
	return strings.Join(append(append([]string{}, c.DNSNames...), c.IPAddresses...), ", ")
}

// noteTestID tells replies to the visitor from internal notes, for tests.
func noteTestID(n wizard.Note) string {
	if n.Public {
		return "reply"
	}
	return "note"
}

// wideMeta widens a page that sets its evidence beside the question on a
// wide screen.
func wideMeta(m PageMeta) PageMeta {
	m.Wide = true
	return m
}

// findingClass marks the one-line finding above a step's question.
func findingClass(r *probes.Report) string {
	if r != nil && r.Verdict.Code == probes.Healthy {
		return "finding healthy"
	}
	return "finding"
}

// answersClass lays out a step's answers. A step with instructions, a
// summary to send or a check's result, and few answers, keeps them in a bar
// at the bottom of the screen while the rest scrolls by, so that on a phone the first screen holds the question
// and its answers however long the instructions are.
func answersClass(st *wizard.Step) string {
	long := len(st.Steps) > 0 || st.Escalation != nil || st.Confirmation != nil
	if long && len(st.Choices) <= 3 {
		return "choices answers stick"
	}
	return "choices answers"
}

// labelled ends a step's title as a label before its answer: "Who are you
// in this?" stays a question, "What gatecheck found" gains a colon.
func labelled(title string) string {
	title = strings.TrimSpace(title)
	if strings.HasSuffix(title, "?") || strings.HasSuffix(title, ":") {
		return title
	}
	return title + ":"
}

// explanation is the sentence under "What gatecheck saw". A site that works
// again after a failure (a fix confirmed by a check, or the watch seeing it
// recover) is said to work now: the healthy words' "the error you saw is
// probably between you and the site" would contradict the failure gatecheck
// itself saw before.
func explanation(v StepView) string {
	if v.Report == nil {
		return ""
	}
	if worksAgain(v) {
		host := v.Report.Host
		if host == "" && v.Case != nil {
			host = v.Case.Host
		}
		return "gatecheck checked " + host + " again and it answers normally now."
	}
	return wizard.VisitorWords(v.Report, v.Now).Explain
}

// headline is the one line above a step's question. A site that works
// again after a failure says so ("The site works again"), not "The site
// works from gatecheck's server", which reads as if the visitor's trouble
// were their own.
func headline(v StepView) string {
	if v.Report == nil {
		return ""
	}
	if worksAgain(v) {
		return "The site works again"
	}
	return wizard.VisitorWords(v.Report, v.Now).Headline
}

// worksAgain says whether the report shown finds the site working after a
// failure gatecheck saw: a fix confirmed by a check, or the watch seeing
// the site recover.
func worksAgain(v StepView) bool {
	recovered := v.Case != nil && !v.Case.RecoveredAt.IsZero()
	if c := v.Step.Confirmation; c != nil && c.Confirmed {
		recovered = true
	}
	return recovered && v.Report != nil && v.Report.Verdict.Code == probes.Healthy
}

// outcomeWords say how a walk ended, for the visitor; the code stays in the
// API, the staff pages and the page's data-outcome attribute.
var outcomeWords = map[wizard.Outcome]string{
	wizard.Resolved:   "This case is solved.",
	wizard.Escalated:  "This case ends with the hand-off above.",
	wizard.Unresolved: "This case is not solved yet.",
}

// OutcomeWords says how a walk ended in words.
func OutcomeWords(o wizard.Outcome) string {
	if w, ok := outcomeWords[o]; ok {
		return w
	}
	return "This case has ended."
}
