package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/recpol/recpol/table"
)

// FormatVersion is the version of the simulator's JSON documents (the
// simulation of a table and the matrix report).
const FormatVersion = 1

// The JSON shape of a simulation (documented in the README):
//
//	{"format_version": 1, "policy_version": "sha256:<hex>",
//	 "accounts": [{"account": "<id>",
//	   "calls": [{"from": "device:<id>" | "offnet" | "other-account",
//	              "to": "device:<id>" | "user:<id>" | "offnet" | "other-account",
//	              "recordings": [{"scope": "account" | "caller" | "callee",
//	                              "endpoint": "device:<id>" (absent for the account),
//	                              "leg": "a" | "b",
//	                              "origin": "inbound from onnet to account" | ...,
//	                              "settings": {...}, "provenance": {...}}]}]}]}
//
// Settings and provenance carry the keys of a table cell (url only when
// set; provenance also names where enabled came from).
type (
	// JSONResult is the JSON document of a simulation.
	JSONResult struct {
		FormatVersion int           `json:"format_version"`
		PolicyVersion string        `json:"policy_version"`
		Accounts      []JSONAccount `json:"accounts"`
	}
	// JSONAccount is one account of a JSONResult.
	JSONAccount struct {
		Account string     `json:"account"`
		Calls   []JSONCall `json:"calls"`
		// Callflows and Metaflows list the account's callflows and its
		// devices' DTMF codes (devices with the same metaflows grouped).
		Callflows []JSONCallflow  `json:"callflows,omitempty"`
		Metaflows []JSONMetaflows `json:"metaflows,omitempty"`
	}
	// JSONCall is one simulated call.
	JSONCall struct {
		From       string          `json:"from"`
		To         string          `json:"to"`
		Recordings []JSONRecording `json:"recordings"`
	}
	// JSONRecording is one recording a call starts.
	JSONRecording struct {
		Scope    string `json:"scope"`
		Endpoint string `json:"endpoint,omitempty"`
		Leg      string `json:"leg"`
		Origin   string `json:"origin"`
		// CallerOnly is set on a record_caller recording (the caller's
		// audio only).
		CallerOnly bool           `json:"caller_only,omitempty"`
		Settings   JSONSettings   `json:"settings"`
		Provenance JSONProvenance `json:"provenance"`
	}
)

// JSONSettings are the settings of the cell that started a recording, with
// the keys of the table's JSON in the order of table.ShownSettings. A
// setting the recording does not use (table.Setting.Shown) is zero, and an
// optional one (table.Setting.Optional) is left out while zero: url when
// unset, announce and announce_to when nothing is announced.
type JSONSettings table.Settings

// jsonSettingsOf returns the settings of a recording in the JSON form.
func jsonSettingsOf(s *table.Settings) JSONSettings {
	out := *s
	for _, st := range table.SettingList {
		if !st.Shown(s) {
			st.Clear(&out)
		}
	}
	return JSONSettings(out)
}

// MarshalJSON writes the settings in the order of table.ShownSettings.
func (s JSONSettings) MarshalJSON() ([]byte, error) {
	ts := (*table.Settings)(&s)
	var kvs []keyValue
	for _, st := range table.ShownSettings() {
		if st.Optional() && st.IsZero(ts) {
			continue
		}
		kvs = append(kvs, keyValue{st.Name, st.Value(ts)})
	}
	return marshalObject(kvs)
}

// JSONProvenance says where each setting of a recording came from: enabled,
// then the keys of JSONSettings, an optional setting's left out while it
// has no provenance or its setting is not shown.
type JSONProvenance table.Provenance

// jsonProvenanceOf returns the provenance of a recording with settings s
// in the JSON form.
func jsonProvenanceOf(p *table.Provenance, s *table.Settings) JSONProvenance {
	out := *p
	for _, st := range table.SettingList {
		if !st.Shown(s) || (st.OmitEmpty && st.IsZero(s)) {
			st.SetProvenance(&out, "")
		}
	}
	return JSONProvenance(out)
}

// MarshalJSON writes the provenance in the order of table.ShownSettings,
// enabled first.
func (p JSONProvenance) MarshalJSON() ([]byte, error) {
	tp := (*table.Provenance)(&p)
	kvs := []keyValue{{table.EnabledName, tp.Enabled}}
	for _, st := range table.ShownSettings() {
		v := st.Provenance(tp)
		if st.Optional() && v == "" {
			continue
		}
		kvs = append(kvs, keyValue{st.Name, v})
	}
	return marshalObject(kvs)
}

// keyValue is one member of a JSON object.
type keyValue struct {
	key   string
	value any
}

// marshalObject writes a JSON object with its members in order, without
// HTML escaping (as WriteJSON writes the rest of the document).
func marshalObject(kvs []keyValue) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	put := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encoding %v: %w", v, err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		return nil
	}
	b.WriteByte('{')
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := put(kv.key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := put(kv.value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// JSON returns the JSON document of a simulation.
func (r *Result) JSON() *JSONResult {
	out := &JSONResult{FormatVersion: FormatVersion, PolicyVersion: r.PolicyVersion,
		Accounts: make([]JSONAccount, 0, len(r.Accounts))}
	for _, a := range r.Accounts {
		ja := JSONAccount{Account: a.ID, Calls: make([]JSONCall, 0, len(a.Calls))}
		if a.Account != nil {
			ja.Callflows, ja.Metaflows = explicitJSON(a.Account)
		}
		for _, c := range a.Calls {
			jc := JSONCall{From: c.From.String(), To: c.To.String(),
				Recordings: make([]JSONRecording, 0, len(c.Recordings))}
			for _, rec := range c.Recordings {
				jc.Recordings = append(jc.Recordings, recordingJSON(rec))
			}
			ja.Calls = append(ja.Calls, jc)
		}
		out.Accounts = append(out.Accounts, ja)
	}
	return out
}

// recordingJSON returns the JSON form of one recording.
func recordingJSON(rec table.Recording) JSONRecording {
	jr := JSONRecording{Scope: rec.Scope.String(), Leg: rec.Leg.String(), Origin: rec.Origin}
	if rec.Endpoint != "" {
		jr.Endpoint = "device:" + rec.Endpoint
	}
	if rec.Cell != nil {
		s := rec.Cell.Settings
		if s != nil {
			jr.Settings = jsonSettingsOf(s)
		}
		if p := rec.Cell.Provenance; p != nil {
			if s == nil {
				s = &table.Settings{}
			}
			jr.Provenance = jsonProvenanceOf(p, s)
		}
	}
	return jr
}

// table returns the settings in the table's form.
func (s JSONSettings) table() *table.Settings { return (*table.Settings)(&s) }

// table returns the provenance in the table's form.
func (p JSONProvenance) table() *table.Provenance { return (*table.Provenance)(&p) }

// WriteJSON writes the simulation as indented JSON with a trailing newline.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r.JSON()); err != nil {
		return fmt.Errorf("writing simulation JSON: %w", err)
	}
	return nil
}
