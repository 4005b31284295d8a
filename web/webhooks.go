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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// Webhooks: the case store writes each event (case.created, .escalated,
// .resolved, .recovered, incident.opened) with a delivery for every
// enabled destination, in the transaction of the change it reports. Here a
// background loop sends the deliveries that are due, signed with the
// destination's secret, and retries failures with backoff; the outbox is
// in the database, so a restart loses nothing and a request never waits
// for a destination. Destinations are set by the operator (--webhook) or
// by staff: they may be private addresses, which is why only those
// configured are ever posted to, redirects not followed.

// webhookBackoff are the waits after a delivery's failed attempts; after
// the last, the delivery has failed (about 8 hours after the event).
var webhookBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, time.Hour, 2 * time.Hour, 4 * time.Hour}

// webhookConcurrency is how many deliveries are made at once.
const webhookConcurrency = 4

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

// webhookFuncs are the functions a body template may call.
var webhookFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// parseBodyTemplate reads a destination's body template.
func parseBodyTemplate(text string) (*template.Template, error) {
	return template.New("body").Funcs(webhookFuncs).Option("missingkey=error").Parse(text)
}

// webhookBody is what a delivery sends.
func (s *Server) webhookBody(d *wizard.Delivery) ([]byte, error) {
	p := s.payload(d.Event)
	if d.Webhook.Template == "" {
		return json.Marshal(p)
	}
	t, err := parseBodyTemplate(d.Webhook.Template)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sign is the X-Gatecheck-Signature of body with secret.
func sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// deliverDue makes the deliveries due now, a few at a time.
func (s *Server) deliverDue(ctx context.Context) {
	due, err := s.hooks.DueDeliveries(ctx, s.cfg.Now(), 64)
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
	status, reason := 0, ""
	body, err := s.webhookBody(d)
	if err == nil {
		status, err = s.post(ctx, d, body)
	}
	if ctx.Err() != nil {
		return // shutting down: the attempt does not count
	}
	if err == nil {
		if err := s.hooks.Delivered(context.Background(), d.ID, status); err != nil {
			s.log.Error("recording a webhook delivery", "delivery", d.ID, "err", err)
		}
		s.metrics.webhook("delivered")
		return
	}
	reason = clip(err.Error(), 300)
	var next time.Time
	if d.Attempts < len(webhookBackoff) {
		next = s.cfg.Now().Add(webhookBackoff[d.Attempts])
		s.metrics.webhook("retry")
	} else {
		s.metrics.webhook("failed")
		s.log.Warn("a webhook delivery failed for good", "delivery", d.ID, "url", d.Webhook.URL, "event", d.Event.Name, "err", reason)
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
	resp, err := s.hookClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
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

// newHookClient is the webhooks' HTTP client: no redirects followed (a
// destination is exactly what was configured).
func newHookClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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
	if err := checkWebhook(hook); err != nil {
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
func CheckWebhookURL(raw string) error {
	return checkWebhook(&wizard.Webhook{URL: raw})
}

// checkWebhook refuses a destination gatecheck could not post to.
func checkWebhook(h *wizard.Webhook) error {
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
		t, err := parseBodyTemplate(h.Template)
		if err == nil {
			// Try it on an example, so that a template that cannot run
			// is refused now rather than failing every delivery.
			err = t.Execute(io.Discard, webhookPayload{Event: wizard.EventCaseCreated, At: time.Now(),
				Case: &webhookCase{EventCase: &wizard.EventCase{Token: "example", URL: "https://shop.example.com/"}}})
		}
		if err != nil {
			return wizard.Errorf(wizard.EINVALID, "The body template does not work: %s", clip(err.Error(), 300))
		}
	}
	return nil
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
