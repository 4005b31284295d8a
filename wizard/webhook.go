package wizard

import (
	"context"
	"time"
)

// The events gatecheck sends to webhooks.
const (
	EventCaseCreated    = "case.created"
	EventCaseEscalated  = "case.escalated"
	EventCaseResolved   = "case.resolved"
	EventCaseRecovered  = "case.recovered"
	EventIncidentOpened = "incident.opened"
)

// Events lists every event, in the order they are documented.
var Events = []string{EventCaseCreated, EventCaseEscalated, EventCaseResolved, EventCaseRecovered, EventIncidentOpened}

// Webhook is a destination for events: set by the operator's flags
// (Source "flag") or by an admin in the staff pages ("staff").
type Webhook struct {
	ID     int64  `json:"id"`
	URL    string `json:"url"`
	Secret string `json:"-"`
	// Template, when set, is a text/template that makes the body instead
	// of the standard JSON, for systems that want another shape.
	Template   string    `json:"template,omitempty"`
	Source     string    `json:"source"`
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	DisabledAt time.Time `json:"disabled_at,omitzero"`
}

// EventCase is a case as an event carries it: as it was when the event
// happened.
type EventCase struct {
	Token       string    `json:"token"`
	URL         string    `json:"url"`
	Host        string    `json:"host"`
	Ticket      string    `json:"ticket"`
	Status      Status    `json:"status"`
	Verdict     string    `json:"verdict"`
	Gateway     string    `json:"gateway"`
	CreatedAt   time.Time `json:"created_at"`
	RecoveredAt time.Time `json:"recovered_at,omitzero"`
}

// EventIncident is the incident an incident.opened event reports.
type EventIncident struct {
	Host    string    `json:"host"`
	Verdict string    `json:"verdict"`
	Gateway string    `json:"gateway"`
	Reports int       `json:"reports"`
	FirstAt time.Time `json:"first_at"`
}

// Event is one thing that happened, for webhooks.
type Event struct {
	ID       int64          `json:"-"`
	Name     string         `json:"event"`
	At       time.Time      `json:"at"`
	Case     *EventCase     `json:"case,omitempty"`
	Incident *EventIncident `json:"incident,omitempty"`
}

// The states of a delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID          int64
	Event       Event
	Webhook     Webhook
	State       string
	Attempts    int
	NextAt      time.Time
	LastStatus  int
	LastError   string
	DeliveredAt time.Time
}

// WebhookStore keeps the webhooks and the outbox of deliveries. Events
// themselves are written by the case store, in the transaction of the
// change they report.
type WebhookStore interface {
	// SyncFlagWebhooks makes the flag-set webhooks those of urls, all
	// with secret: new ones are added, ones no longer given disabled.
	SyncFlagWebhooks(ctx context.Context, urls []string, secret string) error
	AddWebhook(ctx context.Context, w *Webhook) error
	DisableWebhook(ctx context.Context, id int64) error
	Webhooks(ctx context.Context) ([]*Webhook, error)
	// ClaimDeliveries takes up to limit pending deliveries due at now for
	// this instance to make, oldest first: no other instance sharing the
	// database is given them before lease has passed (Delivered or
	// DeliveryFailed end the claim).
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// ReleaseDelivery gives back a claimed delivery that was not tried,
	// due at due.
	ReleaseDelivery(ctx context.Context, id int64, due time.Time) error
	// Delivered records a delivery the destination took.
	Delivered(ctx context.Context, id int64, status int) error
	// DeliveryFailed records a failed attempt: tried again at next, or
	// given up when next is zero.
	DeliveryFailed(ctx context.Context, id int64, status int, reason string, next time.Time) error
	// Deliveries returns the latest deliveries, newest first.
	Deliveries(ctx context.Context, limit int) ([]*Delivery, error)
}
