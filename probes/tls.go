package probes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// probeTLS shakes hands with host at address without verifying, so that the
// certificate chain is kept even when it is wrong, then verifies the chain
// itself and names each problem: people need to see which certificate is
// wrong, not only that one is.
func (p *Prober) probeTLS(ctx context.Context, host, address string) *TLSResult {
	res := &TLSResult{Address: address, ServerName: host}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.TLSTimeout)
	defer cancel()
	start := time.Now()
	defer func() { res.DurationMS = ms(time.Since(start)) }()

	raw, err := p.dial(ctx, "tcp", address)
	if err != nil {
		res.Problem, res.Error = "connect_failed", plainError(err)
		return res
	}
	defer raw.Close()
	cfg := &tls.Config{
		InsecureSkipVerify: true, // verified below, by hand, to keep the evidence
		NextProtos:         []string{"h2", "http/1.1"},
		MinVersion:         tls.VersionTLS10,
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		res.Problem = "handshake_failed"
		res.Error = handshakeError(err)
		return res
	}
	st := conn.ConnectionState()
	res.Version = tls.VersionName(st.Version)
	res.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
	res.ALPN = st.NegotiatedProtocol
	for _, c := range st.PeerCertificates {
		res.Chain = append(res.Chain, describeCert(c))
	}
	res.Problem, res.Issues = p.verifyChain(st.PeerCertificates, host)
	if st.Version < tls.VersionTLS12 {
		res.Issues = append(res.Issues, res.Version+" is obsolete; browsers refuse it")
		if res.Problem == "" {
			res.Problem = "handshake_failed"
		}
	}
	return res
}

func handshakeError(err error) string {
	switch classify(err) {
	case KindTimeout:
		return "the TLS handshake did not finish in time: the server accepted the connection but never completed the handshake"
	case KindReset:
		return "the server reset the connection during the TLS handshake"
	case KindEOF:
		return "the server closed the connection during the TLS handshake"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "the server did not answer with TLS (it may be speaking plain HTTP on the https port)"
	}
	return "TLS handshake failed: " + plainError(err)
}

// verifyChain checks validity dates, the name and trust separately, in that
// order of importance, so every problem is named and the first is primary.
func (p *Prober) verifyChain(certs []*x509.Certificate, host string) (problem string, issues []string) {
	if len(certs) == 0 {
		return "handshake_failed", []string{"the server presented no certificate"}
	}
	add := func(kind, msg string) {
		if problem == "" {
			problem = kind
		}
		issues = append(issues, clean(msg))
	}
	now := p.now()
	leaf := certs[0]
	for i, c := range certs {
		who := "the certificate"
		if i > 0 {
			who = fmt.Sprintf("intermediate certificate %q", c.Subject.CommonName)
		}
		switch {
		case now.After(c.NotAfter):
			add("expired", fmt.Sprintf("%s expired on %s (%s ago)", who, c.NotAfter.UTC().Format(time.RFC1123), roundAge(now.Sub(c.NotAfter))))
		case now.Before(c.NotBefore):
			add("not_yet_valid", fmt.Sprintf("%s is not valid until %s", who, c.NotBefore.UTC().Format(time.RFC1123)))
		}
	}
	if err := leaf.VerifyHostname(host); err != nil {
		names := strings.Join(certNames(leaf), ", ")
		if names == "" {
			names = "no names"
		}
		add("hostname_mismatch", fmt.Sprintf("the certificate is for %s, not %s", names, host))
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// Verify trust at a moment the leaf was valid, so an expired certificate
	// is not also reported as untrusted.
	at := now
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: p.cfg.RootCAs, Intermediates: inter, CurrentTime: at})
	if err != nil {
		last := certs[len(certs)-1]
		switch {
		case len(certs) == 1 && isSelfSigned(leaf):
			add("self_signed", "the certificate is self-signed: no browser trusts it")
		case !isSelfSigned(last) && errors.As(err, new(x509.UnknownAuthorityError)):
			add("incomplete_chain", fmt.Sprintf("the chain is incomplete or untrusted: the server did not send the certificate of %q, or that issuer is not a trusted authority", last.Issuer.String()))
		default:
			add("untrusted", "the certificate is not trusted: "+strings.TrimPrefix(err.Error(), "x509: "))
		}
	}
	return problem, issues
}

func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s)
	}
	return out
}

func roundAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d.Hours()/24)) + " days"
	case d >= 2*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " hours"
	}
	return d.Round(time.Minute).String()
}

func isSelfSigned(c *x509.Certificate) bool {
	// CheckSignature, not CheckSignatureFrom: a self-signed leaf is usually
	// not marked as a CA, and is self-signed all the same.
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func certNames(c *x509.Certificate) []string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return names
}

func describeCert(c *x509.Certificate) Certificate {
	sum := sha256.Sum256(c.Raw)
	out := Certificate{
		Subject:    clean(c.Subject.String()),
		Issuer:     clean(c.Issuer.String()),
		DNSNames:   cleanAll(c.DNSNames),
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		Serial:     c.SerialNumber.Text(16),
		SHA256:     hex.EncodeToString(sum[:]),
		IsCA:       c.IsCA,
		SelfSigned: isSelfSigned(c),
	}
	for _, ip := range c.IPAddresses {
		out.IPAddresses = append(out.IPAddresses, ip.String())
	}
	return out
}
