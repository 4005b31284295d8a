package probes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Kind is what went wrong with a connection or request, independent of
// where: the verdict combines it with the phase and the other probes.
type Kind string

// The error kinds.
const (
	KindBlocked      Kind = "blocked"
	KindNXDomain     Kind = "dns_nxdomain"
	KindDNS          Kind = "dns_failure"
	KindRefused      Kind = "refused"
	KindTimeout      Kind = "timeout"
	KindUnreachable  Kind = "unreachable"
	KindReset        Kind = "reset"
	KindEOF          Kind = "closed"
	KindCertExpired  Kind = "cert_expired"
	KindCertHostname Kind = "cert_hostname"
	KindCertUnknown  Kind = "cert_untrusted"
	KindTLS          Kind = "tls_handshake"
	KindProtocol     Kind = "protocol"
	KindRedirectLoop Kind = "redirect_loop"
	KindOther        Kind = "error"
)

// classify maps an error from the network stack to a Kind.
func classify(err error) Kind {
	if err == nil {
		return ""
	}
	var (
		dnsErr   *net.DNSError
		certInv  x509.CertificateInvalidError
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		certVer  *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
	)
	msg := err.Error()
	switch {
	case isBlocked(err):
		return KindBlocked
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return KindNXDomain
		}
		return KindDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), strings.Contains(msg, "connection reset by peer"):
		return KindReset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return KindUnreachable
	case errors.As(err, &certInv):
		if certInv.Reason == x509.Expired {
			return KindCertExpired
		}
		return KindCertUnknown
	case errors.As(err, &hostErr):
		return KindCertHostname
	case errors.As(err, &authErr):
		return KindCertUnknown
	case errors.As(err, &certVer):
		return KindCertUnknown
	case errors.As(err, &recErr), errors.As(err, &alertErr):
		return KindTLS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(msg, "server closed"):
		return KindEOF
	case strings.Contains(msg, "malformed HTTP"), strings.Contains(msg, "response headers exceeded"),
		strings.Contains(msg, "invalid header"), strings.Contains(msg, "malformed MIME"),
		strings.Contains(msg, "bogus greeting"), strings.Contains(msg, "transport connection broken"),
		strings.Contains(msg, "unexpected EOF"), strings.Contains(msg, "stream error"):
		return KindProtocol
	case strings.HasPrefix(msg, "tls:") || strings.Contains(msg, " tls: "):
		return KindTLS
	}
	return KindOther
}

// plainError shortens an error for people: it drops the Go plumbing
// ("Get \"...\": dial tcp ...:") and keeps the cause.
func plainError(err error) string {
	if err == nil {
		return ""
	}
	var be *BlockedError
	if errors.As(err, &be) {
		return be.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "the name " + dnsErr.Name + " does not exist in DNS"
		}
		if dnsErr.IsTimeout {
			return "the DNS resolver did not answer in time for " + dnsErr.Name
		}
		return "DNS lookup of " + dnsErr.Name + " failed: " + dnsErr.Err
	}
	switch classify(err) {
	case KindRefused:
		return "connection refused: nothing is listening on that port"
	case KindReset:
		return "connection reset by the server"
	case KindTimeout:
		return "timed out"
	case KindUnreachable:
		return "network unreachable"
	case KindEOF:
		return "the server closed the connection without answering"
	}
	msg := err.Error()
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		msg = opErr.Err.Error()
	}
	// Certificate names and server bytes end up in error texts.
	return clean(strings.TrimPrefix(msg, "net/http: "))
}
