package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// listFilter rewrites the upstream's answers to the tools/list requests of
// one exchange: tools the user may not see are dropped and, when the
// negotiated protocol has it, the result is marked cacheScope "private" (it
// now depends on who asked, SEP-2549).
type listFilter struct {
	ids     map[string]bool // raw JSON-RPC ids of the tools/list requests
	visible func(tool string) bool
	private bool
}

// isModern says whether a protocol version has cacheScope (2026-07-28 on).
func isModern(version string) bool { return mcp.IsModernProtocol(version) }

var errNotJSONRPC = errors.New("not a JSON-RPC message")

// rewriteJSON checks an upstream JSON answer (one message or a batch) and
// applies f to it; a nil f only checks.
func rewriteJSON(body []byte, f *listFilter) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' && trimmed[0] != '[' || !json.Valid(trimmed) {
		return nil, errNotJSONRPC
	}
	if f == nil {
		return body, nil
	}
	if trimmed[0] == '{' {
		return f.message(trimmed)
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(trimmed, &batch); err != nil {
		return nil, errNotJSONRPC
	}
	for i, m := range batch {
		out, err := f.message(m)
		if err != nil {
			return nil, err
		}
		batch[i] = out
	}
	return json.Marshal(batch)
}

// message rewrites one JSON-RPC message when it answers one of f's
// tools/list requests, and returns any other message unchanged.
func (f *listFilter) message(raw []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errNotJSONRPC
	}
	id, hasID := m["id"]
	res, hasResult := m["result"]
	if !hasID || !hasResult || !f.ids[string(compact(id))] {
		return raw, nil
	}
	var result map[string]json.RawMessage
	if err := json.Unmarshal(res, &result); err != nil || result == nil {
		return nil, errNotJSONRPC
	}
	if rawTools, ok := result["tools"]; ok {
		var tools []json.RawMessage
		if err := json.Unmarshal(rawTools, &tools); err != nil {
			return nil, errNotJSONRPC
		}
		kept := make([]json.RawMessage, 0, len(tools))
		for _, t := range tools {
			var tool struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(t, &tool); err != nil {
				return nil, errNotJSONRPC
			}
			if f.visible(tool.Name) {
				kept = append(kept, t)
			}
		}
		result["tools"], _ = json.Marshal(kept)
	}
	if f.private {
		result["cacheScope"] = json.RawMessage(`"private"`)
	}
	m["result"], _ = json.Marshal(result)
	return json.Marshal(m)
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// copyEvents relays an upstream event stream event by event: each event is
// flushed to the client as soon as its closing blank line arrives (never the
// stream buffered whole), and events answering a tools/list are rewritten
// by f. One event may be at most maxUpstreamMessage bytes; a longer one
// ends the stream.
func copyEvents(w http.ResponseWriter, body io.Reader, f *listFilter) error {
	rc := http.NewResponseController(w)
	// The headers go out at once: a client opening a GET stream learns it
	// is open before the first event, which may be long in coming.
	if err := rc.Flush(); err != nil {
		return err
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxUpstreamMessage)
	var ev eventBuf
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 {
			ev.add(line)
			continue
		}
		if _, err := w.Write(ev.render(f)); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		ev.reset()
	}
	if ev.n > 0 {
		// An event cut off by the end of the stream: passed on as it came
		// (the client discards it, as SSE says).
		_, _ = w.Write(ev.raw.Bytes())
		_ = rc.Flush()
	}
	return sc.Err()
}

// eventBuf collects the lines of one SSE event.
type eventBuf struct {
	raw  bytes.Buffer // the event's lines as received, each ending in \n
	n    int
	data [][]byte // the values of its data: lines
}

func (e *eventBuf) add(line []byte) {
	e.raw.Write(line)
	e.raw.WriteByte('\n')
	e.n++
	if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
		v, _ = bytes.CutPrefix(v, []byte(" "))
		e.data = append(e.data, bytes.Clone(v))
	}
}

func (e *eventBuf) reset() {
	e.raw.Reset()
	e.n = 0
	e.data = e.data[:0]
}

// render returns the event to send, blank line included: as received, or
// with its data replaced when f rewrites it. Data that is not a JSON-RPC
// message passes as it came: it answers no tools/list the client could read.
func (e *eventBuf) render(f *listFilter) []byte {
	if f != nil && len(e.data) > 0 {
		data := bytes.Join(e.data, []byte("\n"))
		if out, err := f.message(data); err == nil && !bytes.Equal(out, data) {
			var b bytes.Buffer
			for _, line := range bytes.SplitAfter(e.raw.Bytes(), []byte("\n")) {
				if len(line) > 0 && !bytes.HasPrefix(line, []byte("data:")) {
					b.Write(line)
				}
			}
			b.WriteString("data: ")
			b.Write(out)
			b.WriteString("\n\n")
			return b.Bytes()
		}
	}
	e.raw.WriteByte('\n')
	return e.raw.Bytes()
}
