package mockclerk

import (
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Clerk (fake)</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;background:#f4f4f7;color:#1f2430;margin:0;display:flex;justify-content:center;padding:48px 16px}
.card{background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(20,20,40,.08);padding:32px;max-width:420px;width:100%}
.brand{font-weight:700;color:#6c47ff;letter-spacing:.02em;margin-bottom:4px}
h1{font-size:22px;margin:0 0 6px}.muted{color:#6b7080;font-size:14px;margin:0 0 20px}
label.user{display:flex;gap:12px;align-items:center;border:1px solid #e3e3ea;border-radius:10px;padding:10px 12px;margin:8px 0;cursor:pointer}
label.user:hover{border-color:#6c47ff}.who{display:flex;flex-direction:column}.who small{color:#6b7080}
button{width:100%;margin-top:18px;background:#6c47ff;color:#fff;border:0;border-radius:10px;padding:12px;font-size:16px;cursor:pointer}
.note{font-size:12px;color:#8a8f9c;margin-top:18px}
fieldset.orgs{border:1px solid #e3e3ea;border-radius:10px;margin-top:12px}fieldset.orgs label{display:block;margin:4px 0}
</style></head><body><main class="card"><div class="brand">clerk · development fake</div>
<h1>{{.Title}}</h1>
{{if .Users}}<p class="muted">to continue to <strong>{{.App}}</strong></p>
<form method="post" action="/sign-in">
<input type="hidden" name="request" value="{{.Request}}">
{{range $i, $u := .Users}}<label class="user"><input type="radio" name="user_id" value="{{$u.ID}}"{{if eq $i 0}} checked{{end}}>
<span class="who"><span>{{$u.Name}}</span><small>{{$u.Email}}{{if $u.Org}} · {{$u.Org.Name}} ({{$u.Org.Role}}){{end}}</small></span></label>
{{end}}{{if .Orgs}}<fieldset class="orgs"><legend>Organization</legend>
<label><input type="radio" name="org_id" value="" checked> The user's own organization, if any</label>
{{range .Orgs}}<label><input type="radio" name="org_id" value="{{.ID}}"> {{.Name}}</label>
{{end}}<label><input type="radio" name="org_id" value="none"> Personal account (no organization)</label>
</fieldset>{{end}}<button type="submit" name="action" value="continue">Continue</button>
</form>
<p class="note">Test users only: this is the mock Clerk of clerk-mcp-proxy. Scopes requested: {{.Scopes}}</p>
{{else}}<p class="muted">{{.Message}}</p>{{end}}
</main></body></html>`))

type pageData struct {
	Title, App, Request, Scopes, Message string
	Users                                []User
	Orgs                                 []Org // the organization picker, shown for user:org:read
}

func setPageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// signInPage is Clerk's hosted sign-in: pick a seeded user.
func (s *Server) signInPage(w http.ResponseWriter, id string, req authRequest) {
	setPageHeaders(w)
	app := req.ClientID
	if app == s.cfg.ClientID {
		app = "your application"
	}
	data := pageData{Title: "Sign in", App: app, Request: id, Scopes: strings.Join(req.Scopes, ", "), Users: s.cfg.Users}
	if slices.Contains(req.Scopes, scopeOrgRead) {
		// Clerk shows an organization selector on consent for
		// user:org:read; the choice becomes org_id in the tokens.
		for _, u := range s.cfg.Users {
			if u.Org != nil && !slices.ContainsFunc(data.Orgs, func(o Org) bool { return o.ID == u.Org.ID }) {
				data.Orgs = append(data.Orgs, *u.Org)
			}
		}
	}
	_ = pageTmpl.Execute(w, data)
}

// page is a local error page (no redirect to an unvalidated URI).
func (s *Server) page(w http.ResponseWriter, status int, title, msg string) {
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, pageData{Title: title, Message: msg})
}

// formPostTmpl is the response_mode=form_post answer (OAuth 2.0 Form Post
// Response Mode): the parameters as hidden fields posted to the redirect
// URI, at once with script, by a button without.
var formPostTmpl = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Continue · Clerk (fake)</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><button type="submit">Continue</button></noscript></form></body></html>`))

type formField struct{ Name, Value string }

// formPostPage answers 200 with the auto-posting form; action is a
// registered redirect URI.
func formPostPage(w http.ResponseWriter, action string, q url.Values) {
	data := struct {
		Action string
		Fields []formField
	}{Action: action}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		data.Fields = append(data.Fields, formField{k, q.Get(k)})
	}
	setPageHeaders(w)
	_ = formPostTmpl.Execute(w, data)
}
