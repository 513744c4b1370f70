package simulate

import (
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
	// JSONSettings are the settings of the cell that started a recording,
	// with the keys of the table's JSON.
	JSONSettings struct {
		Format           string `json:"format"`
		Method           string `json:"method"`
		RecordMinSec     int    `json:"record_min_sec"`
		RecordOnAnswer   bool   `json:"record_on_answer"`
		RecordOnBridge   bool   `json:"record_on_bridge"`
		RecordSampleRate int    `json:"record_sample_rate"`
		TimeLimit        int    `json:"time_limit"`
		URL              string `json:"url,omitempty"`
		Stereo           bool   `json:"stereo"`
		// Announce and AnnounceTo are set only when the recording is
		// announced.
		Announce   string `json:"announce,omitempty"`
		AnnounceTo string `json:"announce_to,omitempty"`
	}
	// JSONProvenance says where each setting of a recording came from.
	JSONProvenance struct {
		Enabled          string `json:"enabled"`
		Format           string `json:"format"`
		Method           string `json:"method"`
		RecordMinSec     string `json:"record_min_sec"`
		RecordOnAnswer   string `json:"record_on_answer"`
		RecordOnBridge   string `json:"record_on_bridge"`
		RecordSampleRate string `json:"record_sample_rate"`
		TimeLimit        string `json:"time_limit"`
		URL              string `json:"url,omitempty"`
		Stereo           string `json:"stereo"`
		Announce         string `json:"announce,omitempty"`
		AnnounceTo       string `json:"announce_to,omitempty"`
	}
)

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
		if s := rec.Cell.Settings; s != nil {
			jr.Settings = JSONSettings{Format: s.Format, Method: s.Method, RecordMinSec: s.RecordMinSec,
				RecordOnAnswer: s.RecordOnAnswer, RecordOnBridge: s.RecordOnBridge,
				RecordSampleRate: s.RecordSampleRate, TimeLimit: s.TimeLimit, URL: s.URL, Stereo: s.Stereo}
			if s.Announce != "" {
				jr.Settings.Announce, jr.Settings.AnnounceTo = s.Announce, s.AnnounceTo
			}
		}
		if p := rec.Cell.Provenance; p != nil {
			jr.Provenance = JSONProvenance{Enabled: p.Enabled, Format: p.Format, Method: p.Method,
				RecordMinSec: p.RecordMinSec, RecordOnAnswer: p.RecordOnAnswer, RecordOnBridge: p.RecordOnBridge,
				RecordSampleRate: p.RecordSampleRate, TimeLimit: p.TimeLimit, URL: p.URL, Stereo: p.Stereo}
			if jr.Settings.Announce != "" {
				jr.Provenance.Announce, jr.Provenance.AnnounceTo = p.Announce, p.AnnounceTo
			}
		}
	}
	return jr
}

// table returns the settings in the table's form.
func (s JSONSettings) table() *table.Settings {
	return &table.Settings{Format: s.Format, TimeLimit: s.TimeLimit, RecordMinSec: s.RecordMinSec,
		RecordSampleRate: s.RecordSampleRate, RecordOnAnswer: s.RecordOnAnswer, RecordOnBridge: s.RecordOnBridge,
		Method: s.Method, URL: s.URL, Stereo: s.Stereo, Announce: s.Announce, AnnounceTo: s.AnnounceTo}
}

// table returns the provenance in the table's form.
func (p JSONProvenance) table() *table.Provenance {
	return &table.Provenance{Enabled: p.Enabled, Format: p.Format, TimeLimit: p.TimeLimit, RecordMinSec: p.RecordMinSec,
		RecordSampleRate: p.RecordSampleRate, RecordOnAnswer: p.RecordOnAnswer, RecordOnBridge: p.RecordOnBridge,
		Method: p.Method, URL: p.URL, Stereo: p.Stereo, Announce: p.Announce, AnnounceTo: p.AnnounceTo}
}

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
