package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/probes"
	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// Webhooks: the case store writes each event (case.created, .escalated,
// .resolved, .recovered, incident.opened) with a delivery for every
// enabled destination, in the transaction of the change it reports. Here a
// background loop sends the deliveries that are due, signed with the
// destination's secret, and retries failures with backoff; the outbox is
// in the database, so a restart loses nothing and a request never waits
// for a destination. Destinations are set by the operator (--webhook),
// trusted as configuration, or by admins, whose destinations go through
// the probes' address guard: an address not on the public internet
// (loopback, private, link-local, the cloud metadata service…) is refused
// unless the operator allowed its range (WebhookAllowNets). Redirects are
// never followed.

// webhookBackoff are the waits after a delivery's failed attempts; after
// the last, the delivery has failed (about 8 hours after the event).
var webhookBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, time.Hour, 2 * time.Hour, 4 * time.Hour}

// webhookConcurrency is how many deliveries are made at once.
const webhookConcurrency = 4

// webhookBatch is how many due deliveries an instance claims at once.
const webhookBatch = 32

// webhookPayload is the standard body: the event, with the case's link.
type webhookPayload struct {
	Event    string                `json:"event"`
	At       time.Time             `json:"at"`
	Case     *webhookCase          `json:"case,omitempty"`
	Incident *wizard.EventIncident `json:"incident,omitempty"`
}

type webhookCase struct {
	*wizard.EventCase
	Link string `json:"link"`
}

// payload dresses an event for destinations.
func (s *Server) payload(ev wizard.Event) webhookPayload {
	p := webhookPayload{Event: ev.Name, At: ev.At, Incident: ev.Incident}
	if ev.Case != nil {
		p.Case = &webhookCase{EventCase: ev.Case, Link: s.cfg.BaseURL + "/c/" + ev.Case.Token}
	}
	return p
}

// webhookBody is what a delivery sends: the standard JSON, or what the
// destination's template makes of it (a *bodyError when it cannot).
func (s *Server) webhookBody(ctx context.Context, d *wizard.Delivery) ([]byte, error) {
	p := s.payload(d.Event)
	if d.Webhook.Template == "" {
		return json.Marshal(p)
	}
	return renderBody(ctx, d.Webhook.Template, p)
}

// sign is the X-Gatecheck-Signature of body with secret.
func sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// deliverDue makes the deliveries due now, a few at a time.
func (s *Server) deliverDue(ctx context.Context) {
	// Claimed, so that of several instances on one database one makes
	// each delivery; the lease covers the batch's attempts at the
	// destination's timeout, after which another instance may try again.
	lease := time.Duration(webhookBatch/webhookConcurrency+1) * s.cfg.WebhookTimeout * 2
	due, err := s.hooks.ClaimDeliveries(ctx, s.cfg.Now(), lease, webhookBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("reading due webhook deliveries", "err", err)
		}
		return
	}
	sem := make(chan struct{}, webhookConcurrency)
	var wg sync.WaitGroup
	for _, d := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.deliver(ctx, d)
		})
	}
	wg.Wait()
}

// deliver makes one attempt of a delivery and records how it went.
func (s *Server) deliver(ctx context.Context, d *wizard.Delivery) {
	status := 0
	body, err := s.webhookBody(ctx, d)
	if err == nil {
		status, err = s.post(ctx, d, body)
	}
	if ctx.Err() != nil {
		// Shutting down: the attempt does not count, and the delivery is
		// given back for another instance, or this one when it is back.
		if err := s.hooks.ReleaseDelivery(context.WithoutCancel(ctx), d.ID, s.cfg.Now()); err != nil {
			s.log.Error("giving back a webhook delivery", "delivery", d.ID, "err", err)
		}
		return
	}
	if err == nil {
		if err := s.hooks.Delivered(context.Background(), d.ID, status); err != nil {
			s.log.Error("recording a webhook delivery", "delivery", d.ID, "err", err)
		}
		s.metrics.webhook("delivered")
		return
	}
	reason := clip(err.Error(), 300)
	var next time.Time
	var be *bodyError
	switch {
	case errors.As(err, &be):
		// The same event makes the same body: trying again cannot help.
		s.metrics.webhook("failed")
		s.log.Warn("a webhook's body template failed", "webhook", d.Webhook.ID, "delivery", d.ID, "event", d.Event.Name, "err", reason)
	case d.Attempts < len(webhookBackoff):
		next = s.cfg.Now().Add(webhookBackoff[d.Attempts])
		s.metrics.webhook("retry")
	default:
		s.metrics.webhook("failed")
		// The log tells the operator which destination, not its
		// address's secrets nor what it answered (the admins' page
		// shows both): logs travel further than the database.
		args := []any{"webhook", d.Webhook.ID, "destination", redactURL(d.Webhook.URL), "delivery", d.ID, "event", d.Event.Name}
		if status != 0 {
			args = append(args, "status", status)
		} else {
			args = append(args, "err", reason)
		}
		s.log.Warn("a webhook delivery failed for good", args...)
	}
	if err := s.hooks.DeliveryFailed(context.Background(), d.ID, status, reason, next); err != nil {
		s.log.Error("recording a failed webhook delivery", "delivery", d.ID, "err", err)
	}
}

// post sends a delivery's body; any answer but a 2xx is an error.
func (s *Server) post(ctx context.Context, d *wizard.Delivery, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatecheck-webhook/1")
	req.Header.Set("X-Gatecheck-Event", d.Event.Name)
	req.Header.Set("X-Gatecheck-Delivery", strconv.FormatInt(d.ID, 10))
	if d.Webhook.Secret != "" {
		req.Header.Set("X-Gatecheck-Signature", sign(body, d.Webhook.Secret))
	}
	client := s.staffHookClient
	if d.Webhook.Source == "flag" {
		client = s.hookClient // the operator's: trusted as configured
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if _, blocked := errors.AsType[*probes.BlockedError](err); blocked {
			err = fmt.Errorf("%w (an admin's destination must be on the public internet, unless the operator allows its range with --allow-webhook-net)", err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		text := strings.ToValidUTF8(strings.TrimSpace(string(excerpt)), "")
		if loc := resp.Header.Get("Location"); loc != "" {
			text = "redirected to " + loc + " (webhooks do not follow redirects)"
		}
		return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, text)
	}
	return resp.StatusCode, nil
}

// newHookClient is a webhooks' HTTP client: no redirects followed (a
// destination is exactly what was configured). With a guard (for admins'
// destinations), every connection is judged in the dialer, on the address
// actually dialled after DNS, and no proxy from the environment is used
// (the guard would judge the proxy's address instead).
func newHookClient(guard *probes.Guard) *http.Client {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if guard != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: guard.Control}).DialContext
		c.Transport = tr
	}
	return c
}

// requireWebhooks answers 404 on the webhook pages of a server without
// webhooks.
func (s *Server) requireWebhooks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hooks == nil {
			s.errorStatus(w, r, http.StatusNotFound, "This gatecheck sends no webhooks.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handleWebhooks answers GET /staff/webhooks: the destinations and the
// latest deliveries.
func (s *Server) handleWebhooks(w http.ResponseWriter, r *http.Request) {
	s.renderWebhooks(w, r, http.StatusOK, templates.WebhooksView{})
}

func (s *Server) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, v templates.WebhooksView) {
	var err error
	if v.Webhooks, err = s.hooks.Webhooks(r.Context()); err != nil {
		s.Error(w, r, err)
		return
	}
	if v.Deliveries, err = s.hooks.Deliveries(r.Context(), 100); err != nil {
		s.Error(w, r, err)
		return
	}
	v.Events, v.BaseURL = wizard.Events, s.cfg.BaseURL
	v.Admin = staffFrom(r.Context()).IsAdmin()
	if !v.Admin {
		// Agents see where events go, but not the rest of an address
		// (Slack-style addresses are themselves the secret) nor what a
		// destination answered (an answer may echo one). What the store
		// returned is this request's own copy.
		for _, h := range v.Webhooks {
			h.URL, h.Secret = redactURL(h.URL), ""
		}
		for _, d := range v.Deliveries {
			d.Webhook.URL, d.Webhook.Secret = redactURL(d.Webhook.URL), ""
			if d.LastError != "" {
				d.LastError = "(the details are for admins)"
			}
		}
	}
	m := s.meta(r, "Webhooks")
	m.Wide = true
	s.render(w, r, status, templates.Webhooks(m, v))
}

// handleAddWebhook answers POST /staff/webhooks: a new destination.
func (s *Server) handleAddWebhook(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	hook := &wizard.Webhook{
		URL:       strings.TrimSpace(r.PostForm.Get("url")),
		Secret:    r.PostForm.Get("secret"),
		Template:  strings.TrimSpace(r.PostForm.Get("template")),
		CreatedBy: staffFrom(r.Context()).Name,
	}
	err := checkWebhook(r.Context(), hook)
	if err == nil {
		err = s.checkDestination(r.Context(), hook.URL)
	}
	if err != nil {
		s.renderWebhooks(w, r, http.StatusUnprocessableEntity, templates.WebhooksView{
			Error: wizard.ErrorMessage(err), URL: clip(hook.URL, 4*maxWebhookURL), Template: clip(hook.Template, 4*maxTemplate)})
		return
	}
	if err := s.hooks.AddWebhook(r.Context(), hook); err != nil {
		s.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/staff/webhooks", http.StatusSeeOther)
}

// Limits of a destination as staff type it, in characters.
const (
	maxWebhookURL = 2000
	maxTemplate   = 10000
	maxSecret     = 200
)

// CheckWebhookURL refuses an address gatecheck could not post events to.
// It does not judge where the address leads: the operator's destinations
// are configuration, trusted.
func CheckWebhookURL(raw string) error {
	return checkWebhook(context.Background(), &wizard.Webhook{URL: raw})
}

// checkWebhook refuses a destination gatecheck could not post to.
func checkWebhook(ctx context.Context, h *wizard.Webhook) error {
	u, err := url.Parse(h.URL)
	switch {
	case !utf8.ValidString(h.URL) || !utf8.ValidString(h.Secret) || !utf8.ValidString(h.Template):
		return wizard.Errorf(wizard.EINVALID, "The address, secret and template must be text.")
	case utf8.RuneCountInString(h.URL) > maxWebhookURL || utf8.RuneCountInString(h.Template) > maxTemplate || utf8.RuneCountInString(h.Secret) > maxSecret:
		return wizard.Errorf(wizard.EINVALID, "The address takes up to %d characters, the secret %d, the template %d.", maxWebhookURL, maxSecret, maxTemplate)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
		return wizard.Errorf(wizard.EINVALID, "The address must be an http or https URL without credentials, such as https://tickets.example.com/hooks/gatecheck.")
	}
	if h.Template != "" {
		// Tried on an example, so that a template that cannot run, or
		// breaks a bound, is refused now rather than failing every
		// delivery.
		if _, err := renderBody(ctx, h.Template, examplePayload()); err != nil {
			if be, ok := errors.AsType[*bodyError](err); ok {
				err = be.err
			}
			return wizard.Errorf(wizard.EINVALID, "The body template does not work: %s.", clip(err.Error(), 300))
		}
	}
	return nil
}

// examplePayload is the event a body template is tried on when added.
func examplePayload() webhookPayload {
	now := time.Now().UTC()
	return webhookPayload{Event: wizard.EventCaseCreated, At: now, Case: &webhookCase{
		EventCase: &wizard.EventCase{Token: "example", URL: "https://shop.example.com/", Host: "shop.example.com", Ticket: "INC-42",
			Status: wizard.StatusOpen, Verdict: "gateway_502", Gateway: "nginx", CreatedAt: now},
		Link: "https://gatecheck.example/c/example",
	}}
}

// checkDestination refuses an admin's destination whose address is not on
// the public internet (loopback, private, link-local, the cloud metadata
// service…) unless the operator allowed its range: events are posted from
// inside the server's network, where such addresses reach what the
// outside must not. A name is resolved now only to say so at once; the
// guard in the delivery client's dialer decides at every connection, so a
// name that resolves elsewhere later (DNS rebinding) is refused then.
func (s *Server) checkDestination(ctx context.Context, raw string) error {
	t, err := probes.Normalize(raw, probes.DefaultPorts)
	if err != nil {
		return wizard.Errorf(wizard.EINVALID, "The address is not one gatecheck can post to: %s.", err)
	}
	addrs, is := []netip.Addr{t.Addr}, "is"
	if !t.Addr.IsValid() {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if addrs, err = s.cfg.lookupHost(ctx, t.Host); err != nil {
			return nil // unknown now: the dialer's guard judges it at each delivery
		}
		for i, a := range addrs {
			addrs[i] = a.Unmap() // a resolver's way of writing IPv4, not a mapped address to dial
		}
		is = "resolves to"
	}
	for _, a := range addrs {
		if err := s.hookGuard.Check(a); err != nil {
			reason := "an address"
			if be, ok := errors.AsType[*probes.BlockedError](err); ok {
				reason = be.Reason
			}
			return wizard.Errorf(wizard.EINVALID, "%s %s %s, not on the public internet: gatecheck posts to such addresses only when the operator allows their range (gatecheck serve --allow-webhook-net).", t.Host, is, reason)
		}
	}
	return nil
}

// redactURL is a destination's address as agents see it: its scheme and
// host, the rest (where Slack-style addresses keep their secret) hidden.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(hidden)"
	}
	if (u.Path == "" || u.Path == "/") && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && u.User == nil {
		return u.Scheme + "://" + u.Host + "/"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// handleDisableWebhook answers POST /staff/webhooks/{id}/disable.
func (s *Server) handleDisableWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		s.Error(w, r, wizard.Errorf(wizard.ENOTFOUND, "There is no such webhook."))
		return
	}
	if err := s.hooks.DisableWebhook(r.Context(), id); err != nil {
		s.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/staff/webhooks", http.StatusSeeOther)
}
