package wizard

import (
	"slices"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/probes"
)

// Status is where a case stands.
type Status string

// The case statuses.
const (
	StatusOpen       Status = "open"
	StatusResolved   Status = "resolved"
	StatusEscalated  Status = "escalated"
	StatusUnresolved Status = "unresolved"
)

// Statuses lists every status, in the order staff see them.
var Statuses = []Status{StatusOpen, StatusResolved, StatusEscalated, StatusUnresolved}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// StatusOf is the status a walk's outcome gives its case.
func StatusOf(o Outcome) Status {
	switch o {
	case Resolved:
		return StatusResolved
	case Escalated:
		return StatusEscalated
	case Unresolved:
		return StatusUnresolved
	}
	return StatusOpen
}

// Case is one person's 502, from the URL to the outcome.
type Case struct {
	ID    int64  `json:"-"`
	Token string `json:"token"`
	URL   string `json:"url"`
	Host  string `json:"host"`
	// NoScheme is true when the address was typed without a scheme: URL
	// is its https form, and the probes try both schemes, as a browser
	// would (see ProbeInput).
	NoScheme bool `json:"no_scheme,omitempty"`
	// Ticket is the reference in the helpdesk's ticket system, if any.
	Ticket string `json:"ticket"`
	// RequesterIP is the address of the person who opened the case, as the
	// server saw it.
	RequesterIP string `json:"requester_ip"`
	Status      Status `json:"status"`
	// TreeVersion is the ID of the tree the case walks (Tree.ID).
	TreeVersion string `json:"tree_version"`
	// Verdict and Gateway are copied from the latest finished probe run,
	// for lists and filters.
	Verdict   string    `json:"verdict"`
	Gateway   string    `json:"gateway"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Watch is gatecheck checking the site again on a schedule until it
	// works; RecoveredAt is when a check found it working again.
	Watch       Watch     `json:"watch"`
	RecoveredAt time.Time `json:"recovered_at,omitzero"`
	// ReporterHash is the SHA-256 (hex) of the secret the reporting
	// browser keeps in a cookie: only that browser's view of the site is
	// "the visitor's browser". Empty until a browser reports or claims the
	// case.
	ReporterHash string `json:"-"`
	// VisitorEmail is the address the visitor left for the helpdesk's
	// replies by mail, or empty. Only staff and the reporting browser see
	// it: anyone else with the link does not.
	VisitorEmail string `json:"-"`
	// Version counts the writes to the case (see ChangeNotifier): what is
	// read with the case is at least as new as this version.
	Version int64 `json:"-"`
	// Origin is the address staff or an API key asked the host to be
	// reached at directly (bypassing an edge or CDN), as ParseOrigin
	// reads it; empty when never asked. Its view is the Vantage from
	// VantageOrigin.
	Origin string `json:"origin,omitempty"`
}

// ProbeInput is what the probes are given for the case: the URL, without
// its scheme when none was typed, so that they try both as a browser would.
func (c *Case) ProbeInput() string {
	if c.NoScheme {
		if _, rest, ok := strings.Cut(c.URL, "://"); ok {
			return rest
		}
	}
	return c.URL
}

// Watch is where a case's watch stands: Next is when the next check is due
// (zero when none is: never watched, recovered, or run out at Until).
type Watch struct {
	Until  time.Time `json:"until,omitzero"`
	Next   time.Time `json:"next,omitzero"`
	Checks int       `json:"checks"`
}

// Watching reports whether checks are scheduled.
func (w Watch) Watching() bool { return !w.Next.IsZero() }

// StepRecord is one entry of a case's append-only step log. An answer
// record puts Node/Choice at position Index of the answers and drops
// everything after it; a back record (Choice empty) cuts the answers to
// Index. Replaying the log gives the current answers, and the log itself
// is the full history, including answers later changed.
type StepRecord struct {
	Seq    int64     `json:"seq"`
	Index  int       `json:"index"`
	Node   string    `json:"node"`
	Choice string    `json:"choice"`
	Actor  string    `json:"actor,omitempty"`
	At     time.Time `json:"at"`
}

// Back reports whether the record is a step back.
func (r StepRecord) Back() bool { return r.Choice == "" }

// ReplayAnswers returns the answers a step log leaves in force.
func ReplayAnswers(log []StepRecord) []Answer {
	var out []Answer
	for _, r := range log {
		i := min(max(r.Index, 0), len(out))
		out = out[:i]
		if !r.Back() {
			out = append(out, Answer{Node: r.Node, Choice: r.Choice, At: r.At})
		}
	}
	return out
}

// RecordsFor returns the step records that turn the answers old into new:
// a back record to the common prefix when needed, then the new answers.
func RecordsFor(old, new []Answer, actor string, at time.Time) []StepRecord {
	common := 0
	for common < len(old) && common < len(new) && old[common].Node == new[common].Node && old[common].Choice == new[common].Choice {
		common++
	}
	var out []StepRecord
	if common < len(old) && common == len(new) {
		out = append(out, StepRecord{Index: common, Actor: actor, At: at})
	}
	for i := common; i < len(new); i++ {
		out = append(out, StepRecord{Index: i, Node: new[i].Node, Choice: new[i].Choice, Actor: actor, At: at})
	}
	return out
}

// ProbeState is where a probe run stands.
type ProbeState string

// The probe run states.
const (
	ProbeQueued  ProbeState = "queued"
	ProbeRunning ProbeState = "running"
	ProbeDone    ProbeState = "done"
)

// ProbeRun is one diagnosis of a case's URL.
type ProbeRun struct {
	ID     int64          `json:"id"`
	State  ProbeState     `json:"state"`
	Report *probes.Report `json:"report"`
	Actor  string         `json:"actor,omitempty"`
	// SharedFrom is the run whose diagnosis this one used, when the case
	// joined a probe of its target already under way or reused a recent
	// one; 0 when the run probed the site itself.
	SharedFrom int64     `json:"shared_from,omitempty"`
	QueuedAt   time.Time `json:"queued_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Note is a staff member's note on a case.
type Note struct {
	ID     int64     `json:"id"`
	Author string    `json:"author"`
	Body   string    `json:"body"`
	At     time.Time `json:"at"`
	// Public marks a reply meant for the visitor, shown on the case's
	// page; other notes are the helpdesk's own.
	Public bool `json:"public"`
}

// StatusChange records a case moving from one status to another.
type StatusChange struct {
	From  Status    `json:"from"`
	To    Status    `json:"to"`
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
}

// CaseFilter selects cases for the staff list. Zero fields do not filter.
type CaseFilter struct {
	Status  Status
	Verdict string
	Host    string
	Ticket  string
	// Query is full-text search over URL, ticket and notes.
	Query    string
	From, To time.Time
	Limit    int
	Offset   int
	// CountUpTo, when positive, lets a count that would have to test
	// every full-text match against the other filters stop past this many:
	// the total is then CountUpTo+1, meaning "more than CountUpTo". Any
	// other total is exact.
	CountUpTo int
}

// User is a helpdesk staff account.
type User struct {
	ID           int64
	Name         string
	PasswordHash string
	// Role says what the account may do besides working cases: admins
	// also manage users, webhooks and API keys.
	Role      Role
	CreatedAt time.Time
}

// VantageBrowser is the From of the visitor's browser's view.
const VantageBrowser = "browser"

// VantageOrigin is the From of the view of the origin reached directly:
// the case's URL with every connection to its host dialled to the
// address staff gave (Case.Origin), Host and SNI unchanged.
const VantageOrigin = "origin"

// Origin returns the latest view of the origin among views, or nil.
func Origin(views []Vantage) *Vantage {
	for i := len(views) - 1; i >= 0; i-- {
		if views[i].From == VantageOrigin {
			return &views[i]
		}
	}
	return nil
}

// Vantage is one point of view on a case's URL besides the server's own
// probes: the visitor's browser now, agents on other networks later
// ("agent:NAME"). The server's view is the case's probe run, not a
// Vantage. A view is made for one probe run of the case, at most one per
// source and run.
type Vantage struct {
	ID    int64     `json:"-"`
	RunID int64     `json:"run"`
	From  string    `json:"from"`
	At    time.Time `json:"at"`
	// Reachable says whether a server answered there; nil when the view
	// could not be taken (the browser skipped the check).
	Reachable *bool `json:"reachable"`
	// Detail says what was seen, for people.
	Detail string `json:"detail"`
	// Report is a full diagnosis from there, for views that can make one
	// (agents); nil for the browser, which cannot.
	Report *probes.Report `json:"report,omitempty"`
	// Addr is the address gatecheck saw an agent report from: the public
	// address of the agent's network, as a site's allowlist sees it.
	Addr string `json:"addr,omitempty"`
}

// Browser returns the latest view of the visitor's browser among views,
// or nil.
func Browser(views []Vantage) *Vantage {
	for i := len(views) - 1; i >= 0; i-- {
		if views[i].From == VantageBrowser {
			return &views[i]
		}
	}
	return nil
}

// AgentViews returns the latest view of each agent among views, in the
// order the agents first reported.
func AgentViews(views []Vantage) []Vantage {
	var out []Vantage
	at := map[string]int{}
	for _, v := range views {
		if !strings.HasPrefix(v.From, "agent:") {
			continue
		}
		if i, ok := at[v.From]; ok {
			out[i] = v
			continue
		}
		at[v.From] = len(out)
		out = append(out, v)
	}
	return out
}
