package gateway

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func fuzzFilter() *listFilter {
	return &listFilter{ids: map[string]bool{"1": true, `"a"`: true}, visible: func(n string) bool { return n != "hidden" }, private: true}
}

// FuzzRewriteJSON: whatever an upstream answers, the JSON path neither
// panics nor lets a hidden tool through in a tools/list answer it accepted,
// and what it passes on is JSON.
func FuzzRewriteJSON(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"hidden"},{"name":"ok"}]}}`,
		`[{"jsonrpc":"2.0","id":"a","result":{"tools":[{"name":"hidden"}]}},{"jsonrpc":"2.0","id":2,"result":{}}]`,
		`{"jsonrpc":"2.0","id":1,"result":{"tools":null}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}`,
		`{"id":1,"result":[]}`, `[]`, `{}`, `null`, `"x"`, `{"id":1,"result":{"tools":[1]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := rewriteJSON(body, fuzzFilter())
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Result struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
			} `json:"result"`
		}
		if json.Unmarshal(out, &m) == nil && string(compact(m.ID)) == "1" {
			for _, tool := range m.Result.Tools {
				if tool.Name == "hidden" {
					t.Fatalf("hidden tool passed: %s", out)
				}
			}
		}
	})
}

// FuzzCopyEvents: any upstream event stream is relayed without a panic, and
// with nothing to rewrite, every complete event passes byte for byte.
func FuzzCopyEvents(f *testing.F) {
	for _, s := range []string{
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"hidden\"}]}}\n\n",
		": ping\n\nid: 3\nretry: 10\ndata: a\ndata: b\n\n",
		"data: {\"id\":\"a\",\"result\":{}}\r\n\r\n",
		"data:\n\ndata: x", "\n\n\n", "data: " + strings.Repeat("x", 100) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		rec := httptest.NewRecorder()
		_ = copyEvents(rec, bytes.NewReader(stream), fuzzFilter())
		plain := httptest.NewRecorder()
		if err := copyEvents(plain, bytes.NewReader(stream), nil); err != nil {
			return
		}
		if bytes.Contains(stream, []byte("\r")) {
			return // CRLF lines are relayed as LF
		}
		want := stream
		if len(stream) > 0 && stream[len(stream)-1] != '\n' {
			want = append(bytes.Clone(stream), '\n') // a last line cut off gets its end
		}
		if !bytes.Equal(plain.Body.Bytes(), want) {
			t.Fatalf("relayed %q as %q", stream, plain.Body.Bytes())
		}
	})
}
