// Package testflow plays the person at the browser in tests: it follows an
// authorization URL through the proxy's consent page and the fake Clerk's
// sign-in form, with a cookie jar and manual redirects, until the browser is
// sent to the client's redirect URI. It also holds a tiny, strict HTML form
// reader good enough for the product's own pages (which use no JavaScript).
package testflow

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Browser is a cookie-keeping HTTP client that does not follow redirects.
type Browser struct {
	HTTP *http.Client
	// Pages records every HTML page seen (URL -> body) for assertions.
	Pages map[string]string
	// Headers records the response headers of every page seen.
	Headers map[string]http.Header
}

// NewBrowser returns a fresh browser with an empty cookie jar.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{
		HTTP: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		Pages:   map[string]string{},
		Headers: map[string]http.Header{},
	}
}

// Choices steer form submissions.
type Choices struct {
	// Consent is the consent button value: "approve" (default) or "deny".
	Consent string
	// UserID picks a user on the sign-in page (default: the preselected one).
	UserID string
	// OrgID picks on the fake Clerk's organization picker (shown for
	// user:org:read): an organization id, or "none" for the personal
	// account (default: the user's own organization).
	OrgID string
	// MaxHops bounds the redirects and forms followed (default 12).
	MaxHops int
}

// ErrNoRedirect is returned when the flow stops on a page that is neither a
// redirect nor a known form (an error page, typically).
var ErrNoRedirect = errors.New("flow stopped without reaching the redirect URI")

// Authorize starts at authorizeURL and returns the URL the browser was finally
// sent to, the first one starting with redirectPrefix.
func (b *Browser) Authorize(ctx context.Context, authorizeURL, redirectPrefix string, c Choices) (*url.URL, error) {
	if c.Consent == "" {
		c.Consent = "approve"
	}
	if c.MaxHops == 0 {
		c.MaxHops = 12
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, err
	}
	for hop := 0; hop < c.MaxHops; hop++ {
		if strings.HasPrefix(req.URL.String(), redirectPrefix) {
			return req.URL, nil
		}
		resp, err := b.HTTP.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			next, err := req.URL.Parse(loc)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(next.String(), redirectPrefix) {
				return next, nil
			}
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil); err != nil {
				return nil, err
			}
			continue
		}
		b.Pages[req.URL.String()] = string(body)
		b.Headers[req.URL.String()] = resp.Header
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%w: %s answered %d: %s", ErrNoRedirect, req.URL.Path, resp.StatusCode, textOf(string(body)))
		}
		form, ok := ParseForm(string(body))
		if !ok {
			return nil, fmt.Errorf("%w: %s has no form", ErrNoRedirect, req.URL.Path)
		}
		values := form.Values()
		if form.HasButton("action", c.Consent) {
			values.Set("action", c.Consent)
		} else {
			if c.UserID != "" && form.HasField("user_id") {
				values.Set("user_id", c.UserID)
			}
			if c.OrgID != "" && form.HasField("org_id") {
				values.Set("org_id", c.OrgID)
			}
			// A named submit button is part of what a browser submits.
			for _, fl := range form.Fields {
				if (fl.Tag == "button" || fl.Type == "submit") && fl.Name != "" {
					values.Set(fl.Name, fl.Value)
					break
				}
			}
		}
		if req, err = form.Request(ctx, req.URL, values); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: too many hops", ErrNoRedirect)
}

// Form is an HTML form read from a page.
type Form struct {
	Action, Method string
	Fields         []Field
}

// Field is one input or button.
type Field struct {
	Tag, Type, Name, Value string
	Checked                bool
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	fieldRe = regexp.MustCompile(`(?is)<(input|button|textarea)\b([^>]*)>`)
	attrRe  = regexp.MustCompile(`(?is)([a-z_:-]+)(?:\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+)))?`)
	tagRe   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// ParseForm reads the first form of a page.
func ParseForm(page string) (Form, bool) {
	m := formRe.FindStringSubmatch(page)
	if m == nil {
		return Form{}, false
	}
	attrs := parseAttrs(m[1])
	f := Form{Action: attrs["action"], Method: strings.ToUpper(attrs["method"])}
	if f.Method == "" {
		f.Method = http.MethodGet
	}
	for _, fm := range fieldRe.FindAllStringSubmatch(m[2], -1) {
		a := parseAttrs(fm[2])
		_, checked := a["checked"]
		f.Fields = append(f.Fields, Field{Tag: strings.ToLower(fm[1]), Type: strings.ToLower(a["type"]), Name: a["name"], Value: a["value"], Checked: checked})
	}
	return f, true
}

func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
		v := m[3] + m[4] + m[5]
		out[strings.ToLower(m[1])] = html.UnescapeString(v)
	}
	return out
}

// Values are what submitting the form sends before a button is chosen:
// hidden and text inputs, and checked radios and checkboxes.
func (f Form) Values() url.Values {
	v := url.Values{}
	for _, fl := range f.Fields {
		if fl.Name == "" || fl.Tag == "button" || fl.Type == "submit" {
			continue
		}
		if (fl.Type == "radio" || fl.Type == "checkbox") && !fl.Checked {
			continue
		}
		v.Set(fl.Name, fl.Value)
	}
	return v
}

// HasButton reports a submit button name=value.
func (f Form) HasButton(name, value string) bool {
	for _, fl := range f.Fields {
		if (fl.Tag == "button" || fl.Type == "submit") && fl.Name == name && fl.Value == value {
			return true
		}
	}
	return false
}

// HasField reports any field named name.
func (f Form) HasField(name string) bool {
	for _, fl := range f.Fields {
		if fl.Name == name {
			return true
		}
	}
	return false
}

// Request builds the submission of the form from page base.
func (f Form) Request(ctx context.Context, base *url.URL, values url.Values) (*http.Request, error) {
	target, err := base.Parse(f.Action)
	if err != nil {
		return nil, err
	}
	if f.Method == http.MethodPost {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(values.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	target.RawQuery = values.Encode()
	return http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
}

// textOf strips tags for readable error messages.
func textOf(page string) string {
	t := strings.Join(strings.Fields(html.UnescapeString(tagRe.ReplaceAllString(page, " "))), " ")
	if len(t) > 300 {
		t = t[:300] + "…"
	}
	return t
}
