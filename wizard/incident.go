package wizard

import "time"

// Incident is many people reporting the same failure at once: the cases of
// one host with one verdict, opened within a window and not resolved.
type Incident struct {
	Host    string `json:"host"`
	Verdict string `json:"verdict"`
	// Gateway is the gateway most of its cases name ("" when unknown).
	Gateway  string    `json:"gateway"`
	Reports  int       `json:"reports"`
	FirstAt  time.Time `json:"first_at"`
	LatestAt time.Time `json:"latest_at"`
	// PerMinute counts the reports in each minute of the window, oldest
	// first: PerMinute[i] counts those opened from Since+i minutes on.
	PerMinute []int `json:"per_minute"`
}

// IncidentFilter selects the cases incidents are made of: those opened
// from Since (inclusive) to Until (inclusive), not resolved, with a
// verdict.
type IncidentFilter struct {
	Since, Until time.Time
	// MinReports is the fewest cases a group needs to be an incident
	// (Incidents only; 1 when not positive).
	MinReports int
}

// Notice is what staff tell the visitors of a host during an incident
// ("We know; the hosting team is on it").
type Notice struct {
	ID        int64     `json:"id"`
	Host      string    `json:"host"`
	Verdict   string    `json:"verdict"` // the incident it was published from
	Body      string    `json:"body"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	ClearedBy string    `json:"cleared_by,omitempty"`
}

// MaxNotice is the longest notice, in characters: visitors read it on
// their case page.
const MaxNotice = 2000
