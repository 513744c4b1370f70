package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/internal/version"
	"github.com/recpol/recpol/runtime/catalog"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/runtime/store"
)

// Handler returns the HTTP API:
//
//	GET  /healthz                                  readiness: build, policy version, switches; 503 "degraded" with reasons (no token)
//	GET  /livez                                    liveness: 200 while the process serves HTTP (no token)
//	GET  /metrics                                  Prometheus metrics (no token)
//	GET  /v1/calls                                 live calls: legs and recordings requested or running (read)
//	POST /v1/calls/{uuid}/recording/{action}       start, stop, mask, unmask, pause, resume (control); answers the recordings acted on
//	GET  /v1/recordings?account=&endpoint=&owner=&call_id=&interaction_id=&origin=&scope=&state=&from=&until=&limit=&cursor=
//	                                               search the catalog, a page at a time (read)
//	GET  /v1/interactions/{id}                     every recording of one call (read)
//	GET  /v1/recordings/{id}                       one recording's metadata (read)
//	GET  /v1/recordings/{id}/media                 its file (media)
//	GET  /v1/uploads?state=dead                    dead-lettered uploads (read)
//	POST /v1/recordings/{id}/upload                retry a dead-lettered upload (control)
//	DELETE /v1/recordings/{id}                     delete a recording's media; the row stays, deleted (delete)
//	POST|DELETE /v1/recordings/{id}/hold           put or lift a legal hold (delete)
//	GET  /v1/audit?who=&action=&account=&call_id=&recording_id=&limit=&cursor=   the audit trail (read)
//	POST /v1/reload                                reload the policy (control, every account)
//
// /v1 needs "Authorization: Bearer <token>" of a token in the runtime
// config (http.token, or http.tokens with a scope and rights); without a
// configured token the /v1 API is disabled. A token limited to an account
// or a device sees only its recordings (others answer 404) and acts only
// on its calls; a stop of a policy recording needs a token of the account
// or of every account. Every call action is audited.
func (r *Runtime) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", r.healthz)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.Handle("GET /v1/calls", r.authorize(RightRead, r.listCalls))
	mux.Handle("POST /v1/calls/{uuid}/recording/{action}", r.authorize(RightControl, r.callAction))
	mux.Handle("GET /v1/recordings", r.authorize(RightRead, r.listRecordings))
	mux.Handle("GET /v1/recordings/{id}", r.authorize(RightRead, r.getRecording))
	mux.Handle("GET /v1/recordings/{id}/media", r.authorize(RightMedia, r.getMedia))
	mux.Handle("GET /v1/uploads", r.authorize(RightRead, r.listUploads))
	mux.Handle("POST /v1/recordings/{id}/upload", r.authorize(RightControl, r.retryUpload))
	mux.Handle("GET /v1/interactions/{id}", r.authorize(RightRead, r.getInteraction))
	mux.Handle("DELETE /v1/recordings/{id}", r.authorize(RightDelete, r.deleteRecording))
	mux.Handle("POST /v1/recordings/{id}/hold", r.authorize(RightDelete, r.hold))
	mux.Handle("DELETE /v1/recordings/{id}/hold", r.authorize(RightDelete, r.hold))
	mux.Handle("GET /v1/audit", r.authorize(RightRead, r.listAudit))
	mux.Handle("POST /v1/reload", r.authorize(RightControl, func(w http.ResponseWriter, req *http.Request) {
		if !tokenOf(req).everyAccount() {
			writeError(w, http.StatusForbidden, "reloading the policy needs a token of every account")
			return
		}
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

// AuditEntry is one action taken through the API: who (the token's name),
// what, on which call or recording, and how it ended.
type AuditEntry struct {
	At        time.Time `json:"at"`
	Who       string    `json:"who"`
	Action    string    `json:"action"`
	Account   string    `json:"account,omitempty"`
	Call      string    `json:"call,omitempty"`
	Recording string    `json:"recording_id,omitempty"`
	Result    string    `json:"result"`
}

// refuse audits an action that did not happen, with result saying why,
// and answers code with msg.
func (r *Runtime) refuse(w http.ResponseWriter, e AuditEntry, result string, code int, msg string) {
	e.Result = result
	r.audit(e)
	writeError(w, code, msg)
}

// audit records an action taken through the API in the catalog's audit
// trail (and the log).
func (r *Runtime) audit(e AuditEntry) {
	e.At = time.Now().UTC()
	r.log.Info("audit", "who", e.Who, "action", e.Action, "account", e.Account, "call", e.Call,
		"recording_id", e.Recording, "result", e.Result)
	err := r.catalog.Apply(context.Background(), catalog.Audit(catalog.AuditEntry{At: e.At, Who: e.Who, Action: e.Action,
		Account: e.Account, CallID: e.Call, RecordingID: e.Recording, Result: e.Result}))
	if err != nil {
		r.log.Error("the audit trail could not be written", "error", err.Error())
	}
}

// healthz answers 200 "ok", or 503 "degraded" with the reasons while the
// runtime cannot do its work: a switch it serves is not connected, the
// last policy reload failed (the previous table stays live), uploads are
// dead-lettered or pending past the alert age. A switch whose lease
// another runtime holds is "standby", not a fault. It is a readiness
// probe; /livez is the liveness probe (a dead switch must not make an
// orchestrator restart the runtime).
func (r *Runtime) healthz(w http.ResponseWriter, req *http.Request) {
	type sw struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
		State     string `json:"state"` // connected, standby or down
		Owner     string `json:"owner,omitempty"`
		Reason    string `json:"reason,omitempty"`
		Since     string `json:"since,omitempty"`
		// MP3: whether the switch writes mp3 (mod_shout), when known;
		// false means mp3 recordings are made in WAV.
		MP3 *bool `json:"mp3,omitempty"`
	}
	out := struct {
		Status        string       `json:"status"`
		Reasons       []string     `json:"reasons,omitempty"`
		Build         version.Info `json:"build"`
		PolicyVersion string       `json:"policy_version"`
		Switches      []sw         `json:"switches"`
	}{Status: "ok", Build: version.Get(), PolicyVersion: r.Policy.Table().Version}
	for _, s := range r.switches {
		st := sw{Name: s.cfg.Name, Connected: s.client.Connected(), State: "connected"}
		if v := s.engine.mp3.Load(); v != mp3Unknown {
			can := v == mp3Yes
			st.MP3 = &can
		}
		if !st.Connected {
			st.State = "down"
			if ss := s.state.Load(); ss != nil {
				st.Reason, st.Since = ss.reason, ss.since.UTC().Format(time.RFC3339)
				if ss.standby {
					st.State, st.Owner = "standby", ss.owner
				}
			}
			if st.State == "down" {
				out.Reasons = append(out.Reasons, fmt.Sprintf("switch %s not connected: %s", s.cfg.Name, st.Reason))
			}
		}
		out.Switches = append(out.Switches, st)
	}
	if reason, at, failed := r.Policy.LastReloadFailure(); failed {
		out.Reasons = append(out.Reasons, fmt.Sprintf("the last policy reload failed at %s, policy %s stays live: %s",
			at.UTC().Format(time.RFC3339), out.PolicyVersion, reason))
	}
	if f := r.Store.Fault(); f != nil {
		out.Reasons = append(out.Reasons, fmt.Sprintf("storage %s since %s: recordings wait in the spool and are retried (%s)",
			f.Kind, f.Since.UTC().Format(time.RFC3339), f.Err))
	}
	h := r.Store.Health()
	if h.Dead > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d uploads dead-lettered: GET /v1/uploads?state=dead", h.Dead))
	}
	if alert := r.cfg.UploadAlertAfter; alert > 0 && h.Oldest > alert {
		out.Reasons = append(out.Reasons, fmt.Sprintf("an upload has been pending for %s (alert after %s)", h.Oldest.Round(time.Second), alert))
	}
	code := http.StatusOK
	if len(out.Reasons) > 0 {
		out.Status, code = "degraded", http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

// listUploads lists the dead-lettered uploads the token may see
// (?state=dead, the only state listed), a page at a time.
func (r *Runtime) listUploads(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	if st := q.Get("state"); st != "dead" {
		writeError(w, http.StatusBadRequest, "state must be dead (pending uploads are counted in /healthz and /metrics)")
		return
	}
	limit, ok := pageLimit(w, q.Get("limit"))
	if !ok {
		return
	}
	t := tokenOf(req)
	items, next, err := r.Store.DeadUploads(req.Context(), limit, q.Get("cursor"))
	if errors.Is(err, store.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "invalid cursor")
		return
	}
	if err != nil {
		r.log.Error("listing dead uploads", "error", err)
		writeError(w, http.StatusInternalServerError, "listing uploads failed")
		return
	}
	items = slices.DeleteFunc(items, func(d store.DeadUpload) bool { return !t.seesAccount(d.Account) })
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// retryUpload puts a dead-lettered upload back in the queue.
func (r *Runtime) retryUpload(w http.ResponseWriter, req *http.Request) {
	m, _, ok := r.lookup(w, req)
	if !ok {
		return
	}
	t := tokenOf(req)
	entry := AuditEntry{Who: t.Name, Action: "retry upload", Account: m.Account, Call: m.CallID, Recording: m.RecordingID, Result: "ok"}
	if err := r.Store.Retry(m.RecordingID); err != nil {
		r.refuse(w, entry, "refused: not dead-lettered", http.StatusConflict, "the recording's upload is not dead-lettered")
		return
	}
	r.audit(entry)
	writeJSON(w, http.StatusAccepted, map[string]string{"recording_id": m.RecordingID, "upload": "queued"})
}

// deleteRecording deletes a recording's media (the catalog keeps its row,
// marked deleted).
func (r *Runtime) deleteRecording(w http.ResponseWriter, req *http.Request) {
	m, _, ok := r.lookup(w, req)
	if !ok {
		return
	}
	t := tokenOf(req)
	entry := AuditEntry{Who: t.Name, Action: "delete", Account: m.Account, Call: m.CallID, Recording: m.RecordingID, Result: "ok"}
	err := r.Store.Delete(req.Context(), m.RecordingID, "api token "+t.Name)
	switch {
	case errors.Is(err, store.ErrHeld):
		r.refuse(w, entry, "refused: on legal hold", http.StatusConflict, "the recording is on legal hold")
		return
	case errors.Is(err, store.ErrConflict):
		r.refuse(w, entry, "refused: upload pending", http.StatusConflict, "the recording's upload is pending: delete it once uploaded or dead-lettered")
		return
	case err != nil:
		r.log.Error("deleting a recording", "recording_id", m.RecordingID, "error", err)
		r.refuse(w, entry, "failed", http.StatusInternalServerError, "deleting the recording failed")
		return
	}
	r.audit(entry)
	writeJSON(w, http.StatusOK, map[string]string{"recording_id": m.RecordingID, "state": "deleted"})
}

// hold puts a recording on legal hold (POST) or lifts it (DELETE).
func (r *Runtime) hold(w http.ResponseWriter, req *http.Request) {
	m, _, ok := r.lookup(w, req)
	if !ok {
		return
	}
	on := req.Method == http.MethodPost
	t := tokenOf(req)
	entry := AuditEntry{Who: t.Name, Action: "hold", Account: m.Account, Call: m.CallID, Recording: m.RecordingID, Result: "ok"}
	if !on {
		entry.Action = "release hold"
	}
	if err := r.Store.SetHold(req.Context(), m.RecordingID, on); err != nil {
		r.log.Error("legal hold", "recording_id", m.RecordingID, "error", err)
		r.refuse(w, entry, "failed", http.StatusInternalServerError, "the hold failed")
		return
	}
	r.audit(entry)
	writeJSON(w, http.StatusOK, map[string]any{"recording_id": m.RecordingID, "hold": on})
}

// listAudit lists the audit trail, a page at a time; a token of one
// account sees that account's entries.
func (r *Runtime) listAudit(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	limit, ok := pageLimit(w, q.Get("limit"))
	if !ok {
		return
	}
	f := catalog.AuditFilter{Who: q.Get("who"), Action: q.Get("action"), Account: q.Get("account"), CallID: q.Get("call_id"),
		RecordingID: q.Get("recording_id")}
	t := tokenOf(req)
	if !t.everyAccount() {
		if f.Account != "" && f.Account != t.Account {
			writeError(w, http.StatusForbidden, "token "+t.Name+" is limited to account "+t.Account)
			return
		}
		f.Account = t.Account
	}
	items, next, err := r.catalog.ListAudit(req.Context(), f, limit, q.Get("cursor"))
	if errors.Is(err, catalog.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, "invalid cursor")
		return
	}
	if err != nil {
		r.log.Error("listing the audit trail", "error", err)
		writeError(w, http.StatusInternalServerError, "listing the audit trail failed")
		return
	}
	out := make([]AuditEntry, 0, len(items))
	for _, a := range items {
		out = append(out, AuditEntry{At: a.At, Who: a.Who, Action: a.Action, Account: a.Account, Call: a.CallID,
			Recording: a.RecordingID, Result: a.Result})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "next_cursor": next})
}

// pageLimit reads ?limit= (default 100, at most 1000).
func pageLimit(w http.ResponseWriter, v string) (int, bool) {
	if v == "" {
		return catalog.DefaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > catalog.MaxLimit {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", catalog.MaxLimit))
		return 0, false
	}
	return n, true
}

func (r *Runtime) callAction(w http.ResponseWriter, req *http.Request) {
	uuid, action := req.PathValue("uuid"), req.PathValue("action")
	if !eslcmd.ValidUUID(uuid) {
		writeError(w, http.StatusBadRequest, "invalid call uuid")
		return
	}
	switch action {
	case "start", "stop", "mask", "unmask", "pause", "resume":
	default:
		writeError(w, http.StatusBadRequest, "action must be start, stop, mask, unmask, pause or resume")
		return
	}
	t := tokenOf(req)
	who := callstate.Actor{Name: "api token " + t.Name, Account: t.Account, Device: t.Device, PolicyStop: t.Device == ""}
	for _, s := range r.switches {
		recs, found, err := s.engine.apiAction(uuid, action, who, time.Now().UnixMicro())
		if !found {
			continue
		}
		entry := AuditEntry{Who: t.Name, Action: action, Account: t.Account, Call: uuid, Result: "accepted"}
		switch {
		case errors.Is(err, callstate.ErrOutOfScope):
			// As if the call did not exist: a token does not learn of
			// calls outside its scope.
			r.refuse(w, entry, "refused: out of scope", http.StatusNotFound, "no call in progress has this uuid")
			return
		case errors.Is(err, callstate.ErrPolicyRecording):
			r.refuse(w, entry, "refused: "+err.Error(), http.StatusForbidden, err.Error())
			return
		case err != nil:
			r.refuse(w, entry, "refused: "+err.Error(), http.StatusConflict, err.Error())
			return
		}
		r.audit(entry)
		if recs == nil {
			recs = []string{}
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"call": uuid, "action": action, "switch": s.cfg.Name, "recordings": recs})
		return
	}
	writeError(w, http.StatusNotFound, "no call in progress has this uuid")
}

// listRecordings searches the catalog: filters account, endpoint, owner,
// call_id, interaction_id, origin, scope, state, from and until (RFC 3339),
// limit (default 100, at most 1000) and cursor; the reply is
// {"items": [...], "next_cursor": "..."} in the order of start then id.
func (r *Runtime) listRecordings(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	f := catalog.Filter{Account: q.Get("account"), Endpoint: q.Get("endpoint"), Owner: q.Get("owner"), CallID: q.Get("call_id"),
		InteractionID: q.Get("interaction_id"), Origin: q.Get("origin"), Scope: q.Get("scope"),
		State: catalog.State(q.Get("state")), Cursor: q.Get("cursor")}
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
	if f.Account != "" && !validID(f.Account) {
		writeError(w, http.StatusBadRequest, "invalid account")
		return
	}
	switch f.State {
	case "", catalog.StateActive, catalog.StateStored, catalog.StateUploaded, catalog.StateDead, catalog.StateQuarantined,
		catalog.StateDeleted, catalog.StateDiscarded:
	default:
		writeError(w, http.StatusBadRequest, "state must be active, stored, uploaded, dead, quarantined, deleted or discarded")
		return
	}
	var ok bool
	if f.Limit, ok = pageLimit(w, q.Get("limit")); !ok {
		return
	}
	t := tokenOf(req)
	if !t.seesAccount(f.Account) && f.Account != "" {
		writeError(w, http.StatusForbidden, "token "+t.Name+" is limited to account "+t.Account)
		return
	}
	if f.Account == "" {
		f.Account = t.Account
	}
	if t.Device != "" {
		if f.Endpoint != "" && f.Endpoint != "device:"+t.Device {
			writeError(w, http.StatusForbidden, "token "+t.Name+" is limited to device "+t.Device)
			return
		}
		f.Endpoint = "device:" + t.Device
	}
	p, err := r.Store.Search(req.Context(), f)
	if errors.Is(err, store.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "invalid cursor or filter")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "listing recordings failed")
		r.log.Error("listing recordings", "error", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": p.Items, "next_cursor": p.NextCursor})
}

// getInteraction lists every recording of one call (all legs and scopes)
// that the token may see.
func (r *Runtime) getInteraction(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if !eslcmd.ValidUUID(id) {
		writeError(w, http.StatusBadRequest, "invalid interaction id")
		return
	}
	items, err := r.Store.Interaction(req.Context(), id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the interaction failed")
		r.log.Error("reading an interaction", "error", err)
		return
	}
	t := tokenOf(req)
	items = slices.DeleteFunc(items, func(rec store.Recording) bool { return !t.seesRecording(rec.Account, rec.Endpoint) })
	if len(items) == 0 {
		writeError(w, http.StatusNotFound, "no recording of this interaction")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"interaction_id": id, "items": items})
}

func (r *Runtime) lookup(w http.ResponseWriter, req *http.Request) (store.Metadata, string, bool) {
	id := req.PathValue("id")
	if !store.ValidName(id) {
		writeError(w, http.StatusBadRequest, "invalid recording id")
		return store.Metadata{}, "", false
	}
	m, media, err := r.Store.Get(id)
	if err == nil && !tokenOf(req).seesRecording(m.Account, m.Endpoint) {
		err = store.ErrNotFound // a token does not learn of recordings outside its scope
	}
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

// getRecording answers one recording's metadata, its state and hold, in
// any state but deleted or discarded (a running one included).
func (r *Runtime) getRecording(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if !store.ValidName(id) {
		writeError(w, http.StatusBadRequest, "invalid recording id")
		return
	}
	rec, err := r.Store.Lookup(req.Context(), id)
	if err == nil && (!tokenOf(req).seesRecording(rec.Account, rec.Endpoint) ||
		rec.State == string(catalog.StateDeleted) || rec.State == string(catalog.StateDiscarded)) {
		err = store.ErrNotFound // a token does not learn of recordings outside its scope
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such recording")
	case err != nil:
		writeError(w, http.StatusInternalServerError, "reading the recording failed")
		r.log.Error("reading a recording", "error", err)
	default:
		writeJSON(w, http.StatusOK, rec)
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
	w.Header().Set("Content-Type", m.ContentType())
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, m.RecordingID, m.Format))
	http.ServeContent(w, req, "", m.Start, f)
}

// seesCall reports whether the token's scope covers a live call: its
// account's, and for a device token a call with a leg of that device.
func (t *Token) seesCall(c callstate.CallView) bool {
	if t.everyAccount() {
		return true
	}
	if c.Account == "" || !t.seesAccount(c.Account) {
		return false
	}
	if t.Device == "" {
		return true
	}
	for _, l := range c.Legs {
		if l.Device == t.Device && (l.Account == "" || l.Account == t.Account) {
			return true
		}
	}
	return false
}

// listCalls lists the live calls of every switch the token may see, with
// their legs and the recordings requested or running: what a tester or
// an agent's tool needs to act on a call.
func (r *Runtime) listCalls(w http.ResponseWriter, req *http.Request) {
	type call struct {
		Switch string `json:"switch"`
		callstate.CallView
	}
	t := tokenOf(req)
	out := []call{}
	for _, s := range r.switches {
		for _, c := range s.engine.calls() {
			if !t.seesCall(c) {
				continue
			}
			out = append(out, call{Switch: s.cfg.Name, CallView: c})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": out})
}
