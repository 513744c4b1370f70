package runtime

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/recpol/recpol/runtime/store"
)

// Handler returns the HTTP API:
//
//	GET  /healthz                                  liveness and the live policy version (no token)
//	GET  /metrics                                  Prometheus metrics (no token)
//	POST /v1/calls/{uuid}/recording/{action}       start, stop, mask, unmask, pause, resume
//	GET  /v1/recordings?account=&from=&until=      stored recordings' metadata (RFC 3339 times)
//	GET  /v1/recordings/{id}                       one recording's metadata
//	GET  /v1/recordings/{id}/media                 its file
//	POST /v1/reload                                reload the policy
//
// /v1 needs "Authorization: Bearer <token>" (http.token in the config);
// without a configured token the /v1 API is disabled.
func (r *Runtime) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", r.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.Handle("POST /v1/calls/{uuid}/recording/{action}", r.auth(r.callAction))
	mux.Handle("GET /v1/recordings", r.auth(r.listRecordings))
	mux.Handle("GET /v1/recordings/{id}", r.auth(r.getRecording))
	mux.Handle("GET /v1/recordings/{id}/media", r.auth(r.getMedia))
	mux.Handle("POST /v1/reload", r.auth(func(w http.ResponseWriter, req *http.Request) {
		r.TriggerReload()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "reload requested"})
	}))
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// auth checks the bearer token in constant time.
func (r *Runtime) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token := ""
		if r.cfg.HTTP != nil {
			token = r.cfg.HTTP.Token.Reveal()
		}
		if token == "" {
			writeError(w, http.StatusForbidden, "the API is disabled: set http.token in the runtime config")
			return
		}
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="recpol"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, req)
	})
}

func (r *Runtime) healthz(w http.ResponseWriter, req *http.Request) {
	type sw struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
	}
	out := struct {
		Status        string `json:"status"`
		PolicyVersion string `json:"policy_version"`
		Switches      []sw   `json:"switches"`
	}{Status: "ok", PolicyVersion: r.Policy.Table().Version}
	for _, s := range r.switches {
		out.Switches = append(out.Switches, sw{s.cfg.Name, s.client.Connected()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Runtime) callAction(w http.ResponseWriter, req *http.Request) {
	uuid, action := req.PathValue("uuid"), req.PathValue("action")
	if !uuidRE.MatchString(uuid) {
		writeError(w, http.StatusBadRequest, "invalid call uuid")
		return
	}
	switch action {
	case "start", "stop", "mask", "unmask", "pause", "resume":
	default:
		writeError(w, http.StatusBadRequest, "action must be start, stop, mask, unmask, pause or resume")
		return
	}
	for _, s := range r.switches {
		found, err := s.engine.apiAction(uuid, action, time.Now().UnixMicro())
		if !found {
			continue
		}
		if err != nil {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"call": uuid, "action": action, "switch": s.cfg.Name})
		return
	}
	writeError(w, http.StatusNotFound, "no call in progress has this uuid")
}

func (r *Runtime) listRecordings(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	f := store.Filter{Account: q.Get("account")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, p.name+" must be an RFC 3339 time")
				return
			}
			*p.dst = t
		}
	}
	if f.Account != "" && !idRE.MatchString(f.Account) {
		writeError(w, http.StatusBadRequest, "invalid account")
		return
	}
	ms, err := r.Store.List(f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "listing recordings failed")
		r.log.Error("listing recordings", "error", err)
		return
	}
	if ms == nil {
		ms = []store.Metadata{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": ms})
}

func (r *Runtime) lookup(w http.ResponseWriter, req *http.Request) (store.Metadata, string, bool) {
	id := req.PathValue("id")
	if !store.ValidName(id) {
		writeError(w, http.StatusBadRequest, "invalid recording id")
		return store.Metadata{}, "", false
	}
	m, media, err := r.Store.Get(id)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "no such recording")
		} else {
			writeError(w, http.StatusInternalServerError, "reading the recording failed")
			r.log.Error("reading a recording", "error", err)
		}
		return store.Metadata{}, "", false
	}
	return m, media, true
}

func (r *Runtime) getRecording(w http.ResponseWriter, req *http.Request) {
	if m, _, ok := r.lookup(w, req); ok {
		writeJSON(w, http.StatusOK, m)
	}
}

func (r *Runtime) getMedia(w http.ResponseWriter, req *http.Request) {
	m, media, ok := r.lookup(w, req)
	if !ok {
		return
	}
	f, err := os.Open(media)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such recording")
		return
	}
	defer f.Close()
	ct := "audio/mpeg"
	if m.Format == "wav" {
		ct = "audio/wav"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, m.RecordingID, m.Format))
	http.ServeContent(w, req, "", m.Start, f)
}

// apiAction runs an API action on the call a leg belongs to. start and
// stop act on that leg (start uses the settings of the account's cell for
// the call, with an "api" origin); mask, unmask, pause and resume on every
// recording of the call.
func (e *engine) apiAction(uuid, action string, ts int64) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastTS > 0 {
		// Masked ranges are measured on the switch's clock, as the
		// events' times are: estimate it from the latest event.
		ts = e.lastTS + time.Since(e.lastSeen).Microseconds()
	}
	return e.actLocked(uuid, action, ts)
}

// act runs an action on the call of a leg at ts (µs on the switch's clock).
func (e *engine) act(uuid, action string, ts int64) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.actLocked(uuid, action, ts)
}

func (e *engine) actLocked(uuid, action string, ts int64) (bool, error) {
	cmds, found, err := e.m.Act(uuid, action, ts)
	e.do(cmds)
	return found, err
}
