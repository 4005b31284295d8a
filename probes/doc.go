// Package probes diagnoses why a URL answers (or fails to answer) the way it
// does: DNS, TCP to every address, TLS and the certificate, HTTP on both
// schemes with per-hop phase timings, repeated samples, and a fingerprint of
// the gateway that produced an error page. It returns a typed [Report] whose
// [Verdict] codes are a public contract used by the wizard, the case store and
// integrations.
//
// Every connection goes through a [Guard] in the dialer's Control hook, so the
// address actually dialled (after DNS, on every redirect hop) is checked
// against the non-public ranges; operators open ranges explicitly.
package probes
