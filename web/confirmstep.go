package web

import (
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/gatecheck/gatecheck/templates"
)

// errAnswered tells a handler's caller that the request was answered
// already (with a confirmation page, say): nothing more is to be written.
var errAnswered = errors.New("answered")

// confirmed says whether a posted action that cannot be undone (removing
// an account, revoking a key, changing many cases at once) was confirmed.
// When it was not, it answers with a page that says what will happen and
// posts the same form again with confirm=1; it needs no JavaScript.
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request, ask func() templates.ConfirmView) bool {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return false
	}
	if r.PostForm.Get("confirm") == "1" {
		return true
	}
	v := ask()
	v.Action = r.URL.Path
	for _, k := range slices.Sorted(maps.Keys(r.PostForm)) {
		if k == "confirm" {
			continue
		}
		for _, val := range r.PostForm[k] {
			v.Fields = append(v.Fields, templates.ConfirmField{Name: k, Value: val})
		}
	}
	s.render(w, r, http.StatusOK, templates.Confirm(s.meta(r, v.Title), v))
	return false
}
