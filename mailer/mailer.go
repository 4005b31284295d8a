// Package mailer sends gatecheck's e-mail (escalation summaries) through
// the operator's SMTP server, with github.com/wneessen/go-mail.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Sender sends mail through one SMTP server, from one address.
type Sender struct {
	host     string
	port     int
	user     string
	pass     string
	ssl      bool // smtps: TLS from the first byte
	policy   gomail.TLSPolicy
	auth     gomail.SMTPAuthType
	from     string
	fromAddr string
	timeout  time.Duration
}

// The STARTTLS policies of smtp:// URLs (?starttls=…).
var policies = map[string]gomail.TLSPolicy{
	"mandatory":     gomail.TLSMandatory,
	"opportunistic": gomail.TLSOpportunistic,
	"none":          gomail.NoTLS,
}

// The authentication mechanisms an SMTP URL may ask for (?auth=…); the
// -noenc ones send the password over a connection without TLS.
var mechanisms = []string{"auto", "plain", "login", "cram-md5", "scram-sha-1", "scram-sha-256", "plain-noenc", "login-noenc"}

// New reads where and how to send from an SMTP URL:
//
//	smtp://user:pass@host:port?starttls=mandatory|opportunistic|none&auth=auto|plain|…
//	smtps://user:pass@host:port
//
// smtp:// upgrades with STARTTLS and by default refuses a server that
// cannot (mandatory); port 587 by default. smtps:// speaks TLS from the
// start; port 465 by default. With a user, the mechanism is the strongest
// both sides have (auto; never one that shows the password without TLS)
// unless auth names one. from is the sender, an address with an optional
// name ("gatecheck <gatecheck@example.com>").
func New(rawURL, from string) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("the SMTP URL cannot be read (smtp://user:password@host:port)")
	}
	s := &Sender{host: u.Hostname(), timeout: 30 * time.Second, policy: gomail.TLSMandatory, auth: gomail.SMTPAuthAutoDiscover}
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.port, s.ssl = 465, true
	default:
		return nil, fmt.Errorf("the SMTP URL's scheme is %q: use smtp:// (with STARTTLS) or smtps:// (TLS from the start)", u.Scheme)
	}
	if s.host == "" {
		return nil, errors.New("the SMTP URL names no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("the SMTP URL's port %q is not a port", p)
		}
		s.port = n
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "starttls" && k != "auth" {
			return nil, fmt.Errorf("the SMTP URL has an unknown option %q (there are starttls and auth)", k)
		}
	}
	if v := q.Get("auth"); v != "" {
		if !slices.Contains(mechanisms, v) || s.auth.UnmarshalString(v) != nil {
			return nil, fmt.Errorf("auth=%s: use one of %s", v, strings.Join(mechanisms, ", "))
		}
	}
	if v := q.Get("starttls"); v != "" {
		p, ok := policies[v]
		if !ok {
			return nil, fmt.Errorf("starttls=%s: use mandatory, opportunistic or none", v)
		}
		if s.ssl {
			return nil, errors.New("starttls does not apply to smtps://, which speaks TLS from the start")
		}
		s.policy = p
	}
	a, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("the sender %q is not an e-mail address", from)
	}
	s.from, s.fromAddr = a.String(), a.Address
	return s, nil
}

// String names the server without its credentials, for logs.
func (s *Sender) String() string {
	scheme := "smtp"
	if s.ssl {
		scheme = "smtps"
	}
	return scheme + "://" + net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// From is the sender's address.
func (s *Sender) From() string { return s.fromAddr }

// Message is one e-mail, in plain text.
type Message struct {
	ToName, To string
	Subject    string
	Body       string
	// ID makes the Message-ID, the same at every attempt: a receiver that
	// got an attempt whose success was not recorded can tell it again.
	ID   string
	Date time.Time
}

// Send delivers m, or says why the server would not take it.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return err
	}
	if err := msg.AddToFormat(m.ToName, m.To); err != nil {
		return fmt.Errorf("the address %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	if m.ID != "" {
		domain := s.fromAddr[strings.LastIndexByte(s.fromAddr, '@')+1:]
		msg.SetMessageIDWithValue(m.ID + "@" + domain)
	}
	if !m.Date.IsZero() {
		msg.SetDateWithValue(m.Date)
	}
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.timeout)}
	if s.ssl {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.policy))
	}
	if s.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(s.auth), gomail.WithUsername(s.user), gomail.WithPassword(s.pass))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}
