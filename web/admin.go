package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatecheck/gatecheck/templates"
	"github.com/gatecheck/gatecheck/wizard"
)

// The admin pages: staff accounts and API keys. Every route here sits
// behind requireStaff and requireAdmin; every change is a POST form (the
// cross-origin protection covers them), refused changes show the page
// again with the reason and the form as typed, done ones redirect back
// with what was done.

// handleUsers answers GET /staff/users.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := templates.UsersView{Role: wizard.RoleAgent}
	name := clip(q.Get("name"), 100)
	switch q.Get("done") {
	case "added":
		v.Done = "Added " + name + ". They can sign in at /staff/login."
	case "role":
		if role := wizard.Role(q.Get("role")); role.Valid() {
			v.Done = name + " is now " + article(role) + "."
		}
	case "removed":
		v.Done = "Removed " + name + " and ended their sessions; their notes keep their name."
	}
	s.renderUsers(w, r, http.StatusOK, v)
}

func article(r wizard.Role) string {
	if r == wizard.RoleAdmin {
		return "an admin"
	}
	return "an agent"
}

// renderUsers shows the users page with v's message and form.
func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, status int, v templates.UsersView) {
	if s.users == nil {
		s.errorStatus(w, r, http.StatusNotFound, "This gatecheck manages no users on the web.")
		return
	}
	users, err := s.users.Users(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	me := staffFrom(r.Context())
	for _, u := range users {
		v.Users = append(v.Users, templates.UserLine{Name: u.Name, Role: u.Role, Created: templates.When(u.CreatedAt), Self: u.ID == me.ID})
	}
	v.Roles = wizard.Roles
	m := s.meta(r, "Users")
	m.Wide = true
	s.render(w, r, status, templates.StaffUsers(m, v))
}

// refused answers a change the store refused (bad input, a conflict such
// as the last admin, a name not found) with the page again and the
// reason; any other failure goes to Error.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, err error, again func(status int, msg string)) {
	switch code := wizard.ErrorCode(err); code {
	case wizard.EINVALID, wizard.ECONFLICT, wizard.ENOTFOUND:
		again(codeStatus[code], wizard.ErrorMessage(err))
	default:
		s.Error(w, r, err)
	}
}

// handleAddUser answers POST /staff/users {name, password, role}.
func (s *Server) handleAddUser(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	if s.users == nil {
		s.renderUsers(w, r, http.StatusNotFound, templates.UsersView{})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	role := wizard.Role(r.PostForm.Get("role"))
	if role == "" {
		role = wizard.RoleAgent
	}
	kept := templates.UsersView{Name: clip(name, 100), Role: role}
	err := wizard.CheckUserName(name)
	if err == nil && !role.Valid() {
		err = wizard.Errorf(wizard.EINVALID, "Choose a role: admin or agent.")
	}
	var hash string
	if err == nil {
		hash, err = HashPassword(r.PostForm.Get("password"))
	}
	if err == nil {
		_, err = s.users.CreateUser(r.Context(), name, hash, role)
	}
	if err != nil {
		s.refused(w, r, err, func(status int, msg string) {
			kept.Error = msg
			s.renderUsers(w, r, status, kept)
		})
		return
	}
	http.Redirect(w, r, "/staff/users?"+url.Values{"done": {"added"}, "name": {name}}.Encode(), http.StatusSeeOther)
}

// changeUser applies change to the account the form names, refusing the
// admin's own account: an admin who demoted or removed themselves by a
// slip would be locked out of this page at once.
func (s *Server) changeUser(w http.ResponseWriter, r *http.Request, verb string, change func(name string) (url.Values, error)) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	if s.users == nil {
		s.renderUsers(w, r, http.StatusNotFound, templates.UsersView{})
		return
	}
	name := r.PostForm.Get("name")
	again := func(status int, msg string) {
		s.renderUsers(w, r, status, templates.UsersView{Role: wizard.RoleAgent, Error: msg})
	}
	// The store finds names as SQLite compares them (case aside, in
	// ASCII), so the account is told by its ID.
	if u, err := s.cfg.Store.UserByName(r.Context(), name); err == nil && u.ID == staffFrom(r.Context()).ID {
		again(http.StatusConflict, "You cannot "+verb+" your own account here: another admin can, or gatecheck user on the server.")
		return
	}
	done, err := change(name)
	if err != nil {
		s.refused(w, r, err, again)
		return
	}
	done.Set("name", name)
	http.Redirect(w, r, "/staff/users?"+done.Encode(), http.StatusSeeOther)
}

// handleSetRole answers POST /staff/users/role {name, role}.
func (s *Server) handleSetRole(w http.ResponseWriter, r *http.Request) {
	s.changeUser(w, r, "change the role of", func(name string) (url.Values, error) {
		role := wizard.Role(r.PostForm.Get("role"))
		return url.Values{"done": {"role"}, "role": {string(role)}}, s.users.SetRole(r.Context(), name, role)
	})
}

// handleRemoveUser answers POST /staff/users/remove {name}.
func (s *Server) handleRemoveUser(w http.ResponseWriter, r *http.Request) {
	if !s.confirmed(w, r, func() templates.ConfirmView {
		name := clip(r.PostForm.Get("name"), 100)
		return templates.ConfirmView{Title: "Remove the account " + name + "?",
			Consequence: "They are signed out at once and can no longer sign in. Their notes and the changes they made stay on the cases.",
			Button:      "Remove " + name, Cancel: "/staff/users"}
	}) {
		return
	}
	s.changeUser(w, r, "remove", func(name string) (url.Values, error) {
		return url.Values{"done": {"removed"}}, s.users.DeleteUser(r.Context(), name)
	})
}

// handleAPIKeys answers GET /staff/apikeys.
func (s *Server) handleAPIKeys(w http.ResponseWriter, r *http.Request) {
	var v templates.APIKeysView
	if q := r.URL.Query(); q.Get("done") == "revoked" {
		v.Done = "Revoked the API key " + clip(q.Get("name"), 100) + ": it is refused from now on."
	}
	s.renderAPIKeys(w, r, http.StatusOK, v)
}

// renderAPIKeys shows the API keys page with v's message, form and new
// key.
func (s *Server) renderAPIKeys(w http.ResponseWriter, r *http.Request, status int, v templates.APIKeysView) {
	if s.apiKeys == nil {
		s.errorStatus(w, r, http.StatusNotFound, "This gatecheck takes no API keys.")
		return
	}
	keys, err := s.apiKeys.APIKeys(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	for _, k := range keys {
		line := templates.APIKeyLine{Name: k.Name, Created: templates.When(k.CreatedAt), By: k.CreatedBy, LastUsed: "never"}
		if line.By == "" {
			line.By = "on the server"
		}
		if !k.LastUsed.IsZero() {
			line.LastUsed = templates.When(k.LastUsed)
		}
		if !k.RevokedAt.IsZero() {
			line.Revoked = templates.When(k.RevokedAt)
		}
		v.Keys = append(v.Keys, line)
	}
	m := s.meta(r, "API keys")
	m.Wide = true
	s.render(w, r, status, templates.StaffAPIKeys(m, v))
}

// handleAddAPIKey answers POST /staff/apikeys {name}: the page again, with
// the new key shown this once (not a redirect: the key is nowhere else).
func (s *Server) handleAddAPIKey(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	if s.apiKeys == nil {
		s.renderAPIKeys(w, r, http.StatusNotFound, templates.APIKeysView{})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	again := func(status int, msg string) {
		s.renderAPIKeys(w, r, status, templates.APIKeysView{Name: clip(name, 100), Error: msg})
	}
	k, token, err := s.apiKeys.CreateAPIKey(r.Context(), name, staffFrom(r.Context()).Name)
	if err != nil {
		s.refused(w, r, err, again)
		return
	}
	s.renderAPIKeys(w, r, http.StatusOK, templates.APIKeysView{NewName: k.Name, NewToken: token,
		Done: "Added the API key " + k.Name + "."})
}

// handleRevokeAPIKey answers POST /staff/apikeys/revoke {name}.
func (s *Server) handleRevokeAPIKey(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.Error(w, r, formError(err))
		return
	}
	if s.apiKeys == nil {
		s.renderAPIKeys(w, r, http.StatusNotFound, templates.APIKeysView{})
		return
	}
	name := r.PostForm.Get("name")
	if !s.confirmed(w, r, func() templates.ConfirmView {
		return templates.ConfirmView{Title: "Revoke the API key " + clip(name, 100) + "?",
			Consequence: "Every program that uses it is refused from now on; a revoked key cannot be brought back (make a new one).",
			Button:      "Revoke " + clip(name, 100), Cancel: "/staff/apikeys"}
	}) {
		return
	}
	if err := s.apiKeys.RevokeAPIKey(r.Context(), name); err != nil {
		s.refused(w, r, err, func(status int, msg string) {
			s.renderAPIKeys(w, r, status, templates.APIKeysView{Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/staff/apikeys?"+url.Values{"done": {"revoked"}, "name": {name}}.Encode(), http.StatusSeeOther)
}
