package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// API keys identify ticket systems on the JSON API: sent as
// "Authorization: Bearer gck_…", a key gets its own limit on the cases it
// opens (APIKeyProbesPerMinute, counted per key, not per address) and
// reads the incidents, which anonymous clients may not. A request that
// sends Authorization must send a live key: an unknown or revoked one is a
// 401, never a silent fall back to anonymous use. A request without it is
// anonymous, as before keys existed.

type apiKeyCtx struct{}

// apiKeyFrom returns the API key the request was sent with, or nil.
func apiKeyFrom(ctx context.Context) *wizard.APIKey {
	k, _ := ctx.Value(apiKeyCtx{}).(*wizard.APIKey)
	return k
}

// apiKey puts the request's API key, if it sends one, in its context, and
// answers 401 itself for a key that is not valid.
func (s *Server) apiKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			next.ServeHTTP(w, r)
			return
		}
		k, err := s.keyOf(r.Context(), auth)
		if err != nil {
			if wizard.ErrorCode(err) == wizard.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gatecheck API"`)
			}
			s.Error(w, r, err)
			return
		}
		s.keyUsed(r.Context(), k)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiKeyCtx{}, k)))
	})
}

// keyOf returns the live API key an Authorization header carries.
func (s *Server) keyOf(ctx context.Context, auth string) (*wizard.APIKey, error) {
	scheme, token, _ := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	switch {
	case !strings.EqualFold(scheme, "Bearer"):
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "Send an API key as Authorization: Bearer gck_…, or no Authorization header for anonymous use.")
	case s.apiKeys == nil:
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "This gatecheck takes no API keys: send no Authorization header.")
	case strings.HasPrefix(token, "gca_"):
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "That is an agent's token. The API takes API keys (gck_…), which an admin makes on the API keys page or with gatecheck apikey add.")
	case !strings.HasPrefix(token, wizard.APIKeyPrefix):
		return nil, wizard.Errorf(wizard.EUNAUTHORIZED, "This API key is not valid: it was never issued, or it was revoked.")
	}
	return s.apiKeys.APIKeyByToken(ctx, token)
}

// keyUsed records that a key was sent, at most once a minute per key:
// "last used" is for people deciding which keys to revoke, and a write per
// request would cost a ticket system's bursts a transaction each.
func (s *Server) keyUsed(ctx context.Context, k *wizard.APIKey) {
	now := s.cfg.Now()
	s.keyMu.Lock()
	last := max(s.keyUsedAt[k.ID], k.LastUsed.UnixNano())
	due := now.Sub(time.Unix(0, last)) >= time.Minute
	if due {
		s.keyUsedAt[k.ID] = now.UnixNano()
	}
	s.keyMu.Unlock()
	if !due {
		return
	}
	if err := s.apiKeys.APIKeyUsed(context.WithoutCancel(ctx), k.ID); err != nil {
		s.log.Warn("recording an API key's use", "key", k.Name, "err", err)
	}
}

// requireStaffOrKey lets through a request with a live API key (the apiKey
// middleware checked it) or from signed-in staff.
func (s *Server) requireStaffOrKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if apiKeyFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		if u := s.sessionUser(r); u != nil {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), staffKey{}, u)))
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatecheck API"`)
		s.errorStatus(w, r, http.StatusUnauthorized, "This needs an API key (Authorization: Bearer gck_…) or a signed-in staff session.")
	})
}
