package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

var codeStatus = map[string]int{
	wizard.EINVALID:      http.StatusUnprocessableEntity,
	wizard.ENOTFOUND:     http.StatusNotFound,
	wizard.ECONFLICT:     http.StatusConflict,
	wizard.EUNAUTHORIZED: http.StatusUnauthorized,
	wizard.EINTERNAL:     http.StatusInternalServerError,
	codeQueueFull:        http.StatusTooManyRequests,
}

// errTooLarge is the message for a request body over the limit.
var errTooLarge = wizard.Errorf(wizard.EINVALID, "That request is too large.")

// Error answers a failed request: it maps the error's code to a status,
// logs only internal errors, and answers JSON to the API and a page to
// people. Every failing handler goes through here.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = errTooLarge
	}
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The client went away (or the server is shutting down) while the
		// request waited on the store: nobody reads an answer, and it is
		// not a fault of ours.
		s.log.Debug("request abandoned", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	code := wizard.ErrorCode(err)
	if code == codeQueueFull {
		w.Header().Set("Retry-After", "30")
	}
	status, known := codeStatus[code]
	if !known || code == wizard.EINTERNAL {
		status = http.StatusInternalServerError
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if errors.Is(err, errTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	s.errorStatus(w, r, status, wizard.ErrorMessage(err))
}

// errorStatus answers status with a message.
func (s *Server) errorStatus(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if isAPI(r) {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	s.render(w, r, status, templates.ErrorPage(s.meta(r, statusTitle(status)), templates.ErrorView{Status: status, Message: msg}))
}

// statusTitles head the error pages in words people use; the status code
// itself stays in the response.
var statusTitles = map[int]string{
	http.StatusBadRequest:            "That request could not be read",
	http.StatusUnauthorized:          "Please sign in",
	http.StatusForbidden:             "This is not open to you",
	http.StatusNotFound:              "There is nothing at this address",
	http.StatusMethodNotAllowed:      "That cannot be done here",
	http.StatusConflict:              "This changed in the meantime",
	http.StatusRequestEntityTooLarge: "That is too much to send at once",
	http.StatusUnsupportedMediaType:  "That request could not be read",
	http.StatusUnprocessableEntity:   "Please check what you typed",
	http.StatusTooManyRequests:       "Please wait a moment",
	http.StatusInternalServerError:   "Something went wrong on gatecheck's side",
	http.StatusServiceUnavailable:    "gatecheck is busy right now",
}

// statusTitle is an error page's title for status.
func statusTitle(status int) string {
	if t, ok := statusTitles[status]; ok {
		return t
	}
	return http.StatusText(status)
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/agent/") || strings.HasSuffix(r.URL.Path, ".json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		slog.Debug("writing JSON", "err", err)
	}
}
