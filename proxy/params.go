package proxy

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/httpx"
	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/internal/oautherr"
)

// maxFormBytes bounds form bodies; real OAuth requests are a few hundred bytes.
const maxFormBytes = 64 << 10

// params are the parameters of one OAuth request, already checked for the
// problems every endpoint must refuse: duplicates (RFC 6749 §3.1 and §3.2:
// "Request and response parameters MUST NOT be included more than once"),
// invalid UTF-8 and control characters.
type params struct{ v url.Values }

func (p params) get(name string) string { return p.v.Get(name) }

func (p params) has(name string) bool { _, ok := p.v[name]; return ok }

// readQuery parses the query string of a GET request.
func readQuery(r *http.Request) (params, *oauthError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{}, errInvalidRequest("the query string is malformed")
	}
	return checkParams(v)
}

// readForm parses an application/x-www-form-urlencoded body (and refuses
// everything else). Query parameters are not merged in: credentials and codes
// belong in the body (RFC 6749 §3.2).
func readForm(w http.ResponseWriter, r *http.Request) (params, *oauthError) {
	if r.Method != http.MethodPost {
		return params{}, oautherr.New(http.StatusMethodNotAllowed, oautherr.InvalidRequest, "use POST")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return params{}, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	body, berr := httpx.ReadBody(w, r, maxFormBytes)
	if berr != nil {
		return params{}, oautherr.New(berr.Status, oautherr.InvalidRequest, berr.Description)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return params{}, errInvalidRequest("the form body is malformed")
	}
	return checkParams(v)
}

func checkParams(v url.Values) (params, *oauthError) {
	for name, vals := range v {
		if !validParamText(name) {
			return params{}, errInvalidRequest("a parameter name is not valid UTF-8 text")
		}
		if len(vals) > 1 {
			return params{}, errInvalidRequest("the parameter " + quoteName(name) + " is repeated")
		}
		if !validParamText(vals[0]) {
			return params{}, errInvalidRequest("the parameter " + quoteName(name) + " has invalid characters")
		}
		if len(vals[0]) > 4096 {
			return params{}, errInvalidRequest("the parameter " + quoteName(name) + " is too long")
		}
	}
	return params{v: v}, nil
}

// validParamText refuses invalid UTF-8 and control characters (CR/LF would
// enable header injection wherever a value is reflected).
func validParamText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// quoteName echoes a parameter name in an error only when it is short and
// plain, so error bodies never reflect arbitrary input.
func quoteName(name string) string {
	if len(name) > 40 || strings.ContainsAny(name, "<>\"'&") {
		return "(unnamed)"
	}
	return "'" + name + "'"
}
