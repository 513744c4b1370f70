package fakeswitch

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
)

// recordUsage is uuid_record's usage reply.
const recordUsage = "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"

func durMS(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// apiCall is one api or bgapi command being run: what it records, and
// the events it fires while it runs (before a bgapi's BACKGROUND_JOB).
type apiCall struct {
	rec *CommandRecord
	// during fire the events that happen while the command runs: a
	// pre-answer's CHANNEL_PROGRESS_MEDIA, a start's RECORD_START.
	during []func()
	// holdJob and holdKey: a bgapi's BACKGROUND_JOB is written after
	// this file job, behind the events of this call (a RECORD_START
	// waits for its file).
	holdJob *fileJob
	holdKey string
}

// fire runs the events of the command's run.
func (x *apiCall) fire() {
	for _, f := range x.during {
		f()
	}
}

// api runs an api command and returns its output and a function firing
// the events that follow it (run after the reply, or the BACKGROUND_JOB,
// is queued); events that happen while it runs go to x.during. Callers
// hold s.mu.
func (s *Server) api(name, args string, x *apiCall) (string, func()) {
	switch name {
	case "uuid_record":
		return s.uuidRecord(args, x)
	case "uuid_broadcast":
		return s.uuidBroadcast(args)
	case "module_exists":
		// mod_commands.c module_exists_function: "true" or "false",
		// no newline; nothing for no name. The fake switch has the
		// modules a recording client asks about: mod_sndfile (WAV)
		// always, mod_shout (MP3) when it can encode MP3.
		switch strings.TrimSpace(args) {
		case "":
			return "", nil
		case "mod_shout":
			return strconv.FormatBool(s.mp3OK()), nil
		case "mod_sndfile", "mod_commands", "mod_event_socket", "mod_dptools", "mod_tone_stream", "mod_sofia", "mod_loopback":
			return "true", nil
		}
		return "false", nil
	case "global_setvar":
		// mod_commands.c global_setvar_function: "<var>=<value>[=<value2>]";
		// with value2, switch_core_set_var_conditional sets the variable
		// only when it holds value2 (under the globals' write lock); an
		// empty value unsets it. The reply is +OK either way.
		f := strings.SplitN(args, "=", 3)
		if f[0] == "" {
			return "-USAGE: <var>=<value> [=<value2>]\n", nil
		}
		if s.globals == nil {
			s.globals = map[string]string{}
		}
		val := ""
		if len(f) > 1 {
			val = f[1]
		}
		if len(f) == 3 && f[2] != "" {
			if cur, ok := s.globals[f[0]]; !ok || cur != f[2] {
				return "+OK", nil
			}
		}
		if val == "" {
			delete(s.globals, f[0])
		} else {
			s.globals[f[0]] = val
		}
		return "+OK", nil
	case "global_getvar":
		// global_getvar_function: the value, or nothing.
		return s.globals[strings.TrimSpace(args)], nil
	case "uuid_setvar":
		f := strings.SplitN(args, " ", 3)
		if len(f) < 2 || f[0] == "" {
			return "-USAGE: <uuid> <var> [value]\n", nil
		}
		ch := s.channels[f[0]]
		if ch == nil {
			return "-ERR No such channel!\n", nil
		}
		if f[1] == "" {
			return "-ERR No variable specified\n", nil
		}
		if len(f) == 3 && f[2] != "" {
			ch.setVar(f[1], f[2])
		} else {
			ch.unsetVar(f[1])
		}
		return "+OK\n", nil
	case "uuid_getvar":
		f := strings.Fields(args)
		if len(f) < 2 {
			return "-USAGE: <uuid> <var>\n", nil
		}
		ch := s.channels[f[0]]
		if ch == nil {
			return "-ERR No such channel!\n", nil
		}
		if v, ok := ch.getVar(f[1]); ok {
			return v, nil
		}
		return undef, nil
	case "uuid_exists":
		f := strings.Fields(args)
		if len(f) < 1 {
			return "-USAGE: <uuid>\n", nil
		}
		return strconv.FormatBool(s.channels[f[0]] != nil || s.closingFiles(f[0])), nil
	case "uuid_answer":
		f := strings.Fields(args)
		if len(f) < 1 {
			return "-USAGE: <uuid>\n", nil
		}
		ch := s.channels[f[0]]
		if ch == nil {
			return "-ERR No such channel!\n", nil
		}
		return "+OK\n", func() { s.answer(ch) }
	case "uuid_kill":
		f := strings.Fields(args)
		if len(f) < 1 {
			return "-USAGE: <uuid> [cause]\n", nil
		}
		ch := s.channels[f[0]]
		if ch == nil {
			return "-ERR No such channel!\n", nil
		}
		cause := "NORMAL_CLEARING"
		if len(f) > 1 {
			cause = f[1]
		}
		return "+OK\n", func() { s.hangup(ch, cause) }
	case "uuid_dump":
		return s.uuidDump(strings.Fields(args)), nil
	case "show":
		return s.show(strings.Fields(args)), nil
	case "status":
		return fmt.Sprintf("UP 0 years, 0 days, 0 hours, 0 minutes, %d seconds, 0 milliseconds, 0 microseconds\n"+
			"FreeSWITCH (Version %s) is ready (fakeswitch stand-in)\n%d session(s) since startup\n%d session(s) - peak 0, last 5min 0 \n"+
			"0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/100.00\n",
			s.now/1000, Version, s.sessions, len(s.channels)), nil
	case "version":
		return "FreeSWITCH Version " + Version + " (fakeswitch)\n", nil
	case "reloadxml":
		return "+OK [Success]\n", nil
	case "":
		return "-ERR  Command not found!\n", nil
	}
	return "-ERR " + name + " Command not found!\n", nil
}

// uuidRecord implements uuid_record with FreeSWITCH's replies.
func (s *Server) uuidRecord(args string, x *apiCall) (string, func()) {
	rec := x.rec
	f := strings.SplitN(args, " ", 5)
	if args == "" || len(f) < 3 {
		return recordUsage, nil
	}
	ch := s.channels[f[0]]
	if ch == nil {
		return "-ERR Cannot locate session!\n", nil
	}
	action, path := strings.ToLower(f[1]), f[2]
	if path == "" {
		return recordUsage, nil
	}
	switch action {
	case "start":
		// switch_ivr_record_session_event (src/switch_ivr_async.c,
		// signalwire/freeswitch) calls switch_channel_pre_answer before
		// it opens the file: a start pre-answers a leg with no media
		// yet, even when it then fails (SPEC 5, verified on 1.10.12).
		s.preAnswer(ch, x)
		limit := 0
		var vars []eslwire.Header
		rest := f[3:]
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "{") {
			limit, _ = strconv.Atoi(rest[0])
			rest = rest[1:]
		}
		if len(rest) > 0 {
			var err error
			if vars, err = parseVars(strings.Join(rest, " ")); err != nil {
				rec.Note = err.Error()
				return "-ERR Cannot record session!\n", nil
			}
		}
		return s.startRecording(ch, path, limit, vars, x)
	case "stop":
		var stop []*recording
		if path == "all" {
			stop = append(stop, ch.recordings...)
		} else if r := findRecording(ch, path); r != nil {
			stop = append(stop, r)
		}
		if len(stop) == 0 {
			return "-ERR Cannot stop record session!\n", nil
		}
		return "+OK Success\n", func() {
			for _, r := range stop {
				s.stopRecording(r, causeStop)
			}
		}
	case "mask", "unmask", "pause", "resume":
		r := findRecording(ch, path)
		if r == nil {
			word := map[string]string{"mask": "mask", "unmask": "unmask", "pause": "pause", "resume": "resume"}[action]
			return "-ERR Cannot " + word + " recording session!\n", nil
		}
		r.closeSpan(s.now)
		switch action {
		case "mask":
			r.masked = true
		case "unmask":
			r.masked = false
		case "pause":
			r.paused = true
		case "resume":
			r.paused = false
		}
		return "+OK Success\n", nil
	}
	return recordUsage, nil
}

// uuidDump implements "uuid_dump <uuid> [format]" as mod_commands'
// uuid_dump_function does (src/mod/applications/mod_commands/
// mod_commands.c, signalwire/freeswitch): a CHANNEL_DATA event filled by
// switch_channel_event_set_data (the channel's state, Unique-ID,
// Call-Direction, Answer-State, caller profile, Other-Leg-* when it has
// an other leg, every variable_*), never fired, written with
// switch_event_serialize_json for "json" (one object of string values),
// switch_event_serialize otherwise: "Name: value" lines, values
// URL-encoded except for the "plain" format. An unknown uuid answers
// "-ERR No such channel!". "xml" is not supported here: it gets the text
// form.
func (s *Server) uuidDump(f []string) string {
	if len(f) == 0 {
		return "-USAGE: <uuid> [format]\n"
	}
	ch := s.channels[f[0]]
	if ch == nil {
		return "-ERR No such channel!\n"
	}
	ev := s.channelEvent("CHANNEL_DATA", ch, "mod_commands.c", "uuid_dump_function", 2871, nil, nil)
	// Never fired: it takes no Event-Sequence.
	s.evSeq--
	kept := ev.Headers[:0]
	for _, h := range ev.Headers {
		if h.Name != "Event-Sequence" {
			kept = append(kept, h)
		}
	}
	ev.Headers = kept
	format := "txt"
	if len(f) > 1 {
		format = strings.ToLower(f[1])
	}
	switch format {
	case "json":
		b, _ := ev.MarshalJSON()
		return string(b)
	case "plain":
		var b strings.Builder
		for _, h := range ev.Headers {
			v := h.Value
			if v == "" {
				v = undef
			}
			b.WriteString(h.Name + ": " + v + "\n")
		}
		b.WriteString("\n")
		return b.String()
	}
	return string(ev.MarshalPlain())
}

// parseVars parses "{k=v,k2=v2}".
func parseVars(s string) ([]eslwire.Header, error) {
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("recording variables %q are not {k=v,...}", s)
	}
	var out []eslwire.Header
	for _, kv := range strings.Split(s[1:len(s)-1], ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("recording variable %q is not k=v", kv)
		}
		out = append(out, eslwire.Header{Name: k, Value: v})
	}
	return out, nil
}

// show implements "show channels [as json]".
func (s *Server) show(f []string) string {
	if len(f) == 0 || (f[0] != "channels" && f[0] != "calls") {
		return "-USAGE: show channels [as json]\n"
	}
	asJSON := len(f) >= 3 && f[1] == "as" && f[2] == "json"
	cols := []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec", "read_rate", "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid", "sent_callee_name", "sent_callee_num", "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest", "initial_dialplan", "initial_context"}
	var rows [][]string
	for _, u := range sortedKeys(s.channels) {
		ch := s.channels[u]
		created := s.cfg.Epoch.Add(time.Duration(ch.createdUS-s.cfg.Epoch.UnixMicro()) * time.Microsecond).UTC()
		app, _ := ch.getVar("current_application")
		data, _ := ch.getVar("current_application_data")
		callState := "RINGING"
		switch {
		case ch.hungup:
			callState = "HANGUP"
		case ch.answered:
			callState = "ACTIVE"
		case ch.early:
			callState = "EARLY"
		}
		state := "CS_EXECUTE"
		if ch.parent != nil {
			state = "CS_CONSUME_MEDIA"
		}
		rows = append(rows, []string{ch.uuid, ch.direction, created.Format("2006-01-02 15:04:05"), strconv.FormatInt(created.Unix(), 10), ch.name, state, ch.cidName, ch.cidNumber, "127.0.0.1", ch.dest, app, data, "XML", ch.context, "PCMU", "8000", "64000", "PCMU", "8000", "64000", "", s.cfg.Hostname, "", "", "", callState, "", "", "", ch.callUUID, "", "", ch.cidName, ch.cidNumber, "127.0.0.1", ch.dest, "XML", ch.context})
	}
	if asJSON {
		if len(rows) == 0 {
			return `{"row_count":0}` + "\n"
		}
		var b strings.Builder
		fmt.Fprintf(&b, `{"row_count":%d,"rows":[`, len(rows))
		for i, r := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('{')
			for j, c := range cols {
				if j > 0 {
					b.WriteByte(',')
				}
				k, _ := json.Marshal(c)
				v, _ := json.Marshal(r[j])
				b.Write(k)
				b.WriteByte(':')
				b.Write(v)
			}
			b.WriteByte('}')
		}
		b.WriteString("]}\n")
		return b.String()
	}
	var b strings.Builder
	b.WriteString(strings.Join(cols, ",") + "\n")
	for _, r := range rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	fmt.Fprintf(&b, "\n%d total.\n", len(rows))
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

// broadcastUsage is uuid_broadcast's usage reply.
const broadcastUsage = "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"

// uuidBroadcast implements "uuid_broadcast <uuid> <path> [aleg|bleg|holdb|both]"
// as mod_commands.c uuid_broadcast_function does: the reply is "+OK Message
// Sent" whatever happens (switch_ivr_broadcast's result is not checked;
// an unknown uuid plays nothing); no leg word means aleg (with the b-leg
// on hold: SMF_ECHO_ALEG | SMF_HOLD_BLEG); the words are matched as
// substrings (switch_stristr), "holdb" cancelling "bleg". Each leg it
// targets (aleg: the uuid's leg; bleg: the legs bridged to it) runs the
// playback application (switch_ivr_broadcast, src/switch_ivr.c):
// CHANNEL_EXECUTE playback, PLAYBACK_START, then at the end PLAYBACK_STOP
// and CHANNEL_EXECUTE_COMPLETE. Its recordings hear the announcement on
// the write side (audio.go): a tone_stream:// path its tones, any other
// path AnnounceMS of AnnounceHz. A held b-leg hears nothing here. Callers
// hold s.mu.
func (s *Server) uuidBroadcast(args string) (string, func()) {
	f := strings.Fields(args)
	if len(f) < 2 {
		return broadcastUsage, nil
	}
	aleg, bleg := true, false
	if len(f) > 2 {
		w := strings.ToLower(f[2])
		aleg, bleg = false, false
		if strings.Contains(w, "both") {
			aleg, bleg = true, true
		}
		if strings.Contains(w, "aleg") {
			aleg = true
		}
		if strings.Contains(w, "bleg") {
			bleg = true
		}
		if strings.Contains(w, "holdb") {
			bleg = false
		}
	}
	ch := s.channels[f[0]]
	if ch == nil || ch.hungup {
		return "+OK Message Sent\n", nil
	}
	path := f[1]
	var targets []*channel
	if aleg {
		targets = append(targets, ch)
	}
	if bleg {
		for _, u := range sortedKeys(ch.bridged) {
			targets = append(targets, ch.bridged[u])
		}
	}
	return "+OK Message Sent\n", func() {
		for _, t := range targets {
			s.playAnnouncement(t, path)
		}
	}
}

// playAnnouncement plays path to ch from now. Callers hold s.mu.
func (s *Server) playAnnouncement(ch *channel, path string) {
	if ch.hungup {
		return
	}
	bursts, ms, ok := parseToneStream(path)
	fileType := "tone_stream"
	if !ok {
		bursts, ms = []burst{{from: 0, to: AnnounceMS, hz: []voice{AnnounceHz}}}, AnnounceMS
		fileType = ""
	}
	// A new playback ends the one playing (the broadcast is queued
	// behind it on FreeSWITCH; here it cuts in).
	for _, a := range ch.announcements {
		if a.to > s.now {
			a.to = s.now
		}
	}
	a := &announcement{path: path, from: s.now, to: s.now + ms, bursts: bursts}
	ch.announcements = append(ch.announcements, a)
	appUUID := newUUID()
	ch.setVar("current_application", "playback")
	ch.setVar("current_application_data", path)
	exec := []eslwire.Header{{Name: "Application", Value: "playback"}, {Name: "Application-Data", Value: path}, {Name: "Application-UUID", Value: appUUID}}
	s.publish(s.channelEvent("CHANNEL_EXECUTE", ch, "switch_core_session.c", "switch_core_session_exec", 2944, nil, exec))
	pb := []eslwire.Header{}
	if fileType != "" {
		pb = append(pb, eslwire.Header{Name: "Playback-File-Type", Value: fileType})
	}
	pb = append(pb, eslwire.Header{Name: "Playback-File-Path", Value: path})
	s.publish(s.channelEvent("PLAYBACK_START", ch, "switch_ivr_play_say.c", "switch_ivr_play_file", 1646, nil, pb))
	s.schedule(a.to, true, func() {
		if ch.hungup {
			return
		}
		stop := append(append([]eslwire.Header{}, pb...), eslwire.Header{Name: "Playback-Status", Value: "done"})
		s.publish(s.channelEvent("PLAYBACK_STOP", ch, "switch_ivr_play_say.c", "switch_ivr_play_file", 2082, nil, stop))
		done := append(append([]eslwire.Header{}, exec[:2]...), eslwire.Header{Name: "Application-Response", Value: "FILE PLAYED"}, eslwire.Header{Name: "Application-UUID", Value: appUUID})
		s.publish(s.channelEvent("CHANNEL_EXECUTE_COMPLETE", ch, "switch_core_session.c", "switch_core_session_exec", 2988, nil, done))
	})
}
