package svix

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The example delivery from Svix's documentation and its libraries' tests.
const (
	docSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	docID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	docTimestamp = "1614265330"
	docBody      = `{"test": 2432232314}`
	docSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func docHeaders() http.Header {
	h := http.Header{}
	h.Set(HeaderID, docID)
	h.Set(HeaderTimestamp, docTimestamp)
	h.Set(HeaderSignature, docSignature)
	return h
}

func TestVerify(t *testing.T) {
	sec, err := ParseSecret(docSecret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1614265330, 0)
	other, _ := ParseSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of 32 bytes......")))
	with := func(name, value string) http.Header {
		h := docHeaders()
		h.Set(name, value)
		return h
	}
	tests := []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		want error
	}{
		{"Svix's example", docHeaders(), docBody, at, nil},
		{"at the edge of the tolerance", docHeaders(), docBody, at.Add(Tolerance), nil},
		{"from the near future", docHeaders(), docBody, at.Add(-Tolerance), nil},
		{"rotation: a second signature matches", with(HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" "+docSignature), docBody, at, nil},
		{"unknown versions are skipped", with(HeaderSignature, "v1a,xyz "+docSignature), docBody, at, nil},
		{"stale", docHeaders(), docBody, at.Add(Tolerance + time.Second), ErrStale},
		{"too far in the future", docHeaders(), docBody, at.Add(-Tolerance - time.Second), ErrStale},
		{"body changed", docHeaders(), docBody + " ", at, ErrNoMatch},
		{"id changed", with(HeaderID, "msg_other"), docBody, at, ErrNoMatch},
		{"timestamp changed", with(HeaderTimestamp, "1614265331"), docBody, at, ErrNoMatch},
		{"signature flipped", with(HeaderSignature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="), docBody, at, ErrNoMatch},
		{"no id", with(HeaderID, ""), docBody, at, ErrMissingHeaders},
		{"id with a dot", with(HeaderID, "msg.x"), docBody, at, ErrMissingHeaders},
		{"id too long", with(HeaderID, strings.Repeat("a", maxIDLen+1)), docBody, at, ErrMissingHeaders},
		{"no timestamp", with(HeaderTimestamp, ""), docBody, at, ErrMissingHeaders},
		{"timestamp not decimal", with(HeaderTimestamp, "0x60372"), docBody, at, ErrMissingHeaders},
		{"timestamp with leading zero", with(HeaderTimestamp, "01614265330"), docBody, at, ErrMissingHeaders},
		{"negative timestamp", with(HeaderTimestamp, "-1"), docBody, at, ErrMissingHeaders},
		{"no signature", with(HeaderSignature, ""), docBody, at, ErrMissingHeaders},
		{"only other versions", with(HeaderSignature, "v2,"+strings.TrimPrefix(docSignature, "v1,")), docBody, at, ErrMissingHeaders},
		{"signature not base64", with(HeaderSignature, "v1,!!!"), docBody, at, ErrMissingHeaders},
		{"signature too long", with(HeaderSignature, strings.Repeat(docSignature+" ", 200)), docBody, at, ErrMissingHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sec.Verify(tc.h, []byte(tc.body), tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := other.Verify(docHeaders(), []byte(docBody), at); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("another secret: %v, want ErrNoMatch", err)
	}
}

func TestSignHeadersRoundTrip(t *testing.T) {
	sec, _ := ParseSecret(docSecret)
	at := time.Unix(1700000000, 0)
	h := sec.SignHeaders("msg_1", at, []byte("{}"))
	hd, err := sec.Verify(h, []byte("{}"), at)
	if err != nil || hd.ID != "msg_1" || !hd.Timestamp.Equal(at) {
		t.Fatalf("Verify(SignHeaders) = %+v, %v", hd, err)
	}
	if h.Get(HeaderSignature) != "v1,"+base64.StdEncoding.EncodeToString(sec.Sign("msg_1", "1700000000", []byte("{}"))) {
		t.Fatal("SignHeaders and Sign disagree")
	}
}

func TestParseSecret(t *testing.T) {
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		_, err := ParseSecret(s)
		if err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		} else if len(s) > len("whsec_") && strings.Contains(err.Error(), s) {
			t.Errorf("ParseSecret error repeats the secret: %v", err)
		}
	}
}

// FuzzVerify: any headers and body are refused or accepted without a panic;
// an accepted delivery carries a parsed id and a signature that matches.
func FuzzVerify(f *testing.F) {
	f.Add(docID, docTimestamp, docSignature, docBody)
	f.Add("msg_x", "1614265330", "v1,abc v1,"+strings.Repeat("A", 43)+"=", "{}")
	f.Add("", "", "", "")
	f.Add("a b", "99999999999999999999", "v1,,,, ,v1", "x")
	sec, _ := ParseSecret(docSecret)
	at := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		hd, err := sec.Verify(h, []byte(body), at)
		if err != nil {
			return
		}
		if hd.ID == "" || strings.ContainsAny(hd.ID, " .") {
			t.Fatalf("accepted id %q", hd.ID)
		}
		if id != docID || ts != docTimestamp || body != docBody {
			// Anything else accepted would be an HMAC forgery.
			t.Fatalf("accepted a delivery that was not signed: %q %q %q", id, ts, body)
		}
	})
}
