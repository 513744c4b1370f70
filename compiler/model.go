package compiler

import "github.com/recpol/recpol/table"

// The policy as decoded from the evaluated CUE value. Pointer fields are nil
// when the policy leaves them unset: unset must stay distinguishable from
// set, or device > user precedence breaks.

type rawPolicy struct {
	Defaults *rawSettings           `json:"defaults"`
	Accounts map[string]*rawAccount `json:"accounts"`
}

type rawAccount struct {
	CallRecording *struct {
		Account  *rawCR `json:"account"`
		Endpoint *rawCR `json:"endpoint"`
	} `json:"call_recording"`
	Metaflows *rawMetaflows           `json:"metaflows"`
	Users     map[string]*rawUser     `json:"users"`
	Devices   map[string]*rawDevice   `json:"devices"`
	Callflows map[string]*rawCallflow `json:"callflows"`
}

type rawUser struct {
	CallRecording *rawCR        `json:"call_recording"`
	Metaflows     *rawMetaflows `json:"metaflows"`
}

type rawDevice struct {
	Owner         *string       `json:"owner"`
	CallRecording *rawCR        `json:"call_recording"`
	Metaflows     *rawMetaflows `json:"metaflows"`
}

// rawCR is a call_recording object: direction -> network -> settings.
type rawCR struct {
	Any      *rawNetwork `json:"any"`
	Inbound  *rawNetwork `json:"inbound"`
	Outbound *rawNetwork `json:"outbound"`
}

type rawNetwork struct {
	Any    *rawSettings `json:"any"`
	Onnet  *rawSettings `json:"onnet"`
	Offnet *rawSettings `json:"offnet"`
}

type rawSettings struct {
	Enabled          *bool   `json:"enabled"`
	Format           *string `json:"format"`
	TimeLimit        *int    `json:"time_limit"`
	RecordMinSec     *int    `json:"record_min_sec"`
	RecordSampleRate *int    `json:"record_sample_rate"`
	RecordOnAnswer   *bool   `json:"record_on_answer"`
	RecordOnBridge   *bool   `json:"record_on_bridge"`
	Method           *string `json:"method"`
	URL              *string `json:"url"`
	Stereo           *bool   `json:"stereo"`
	Announce         *string `json:"announce"`
	AnnounceTo       *string `json:"announce_to"`
}

type rawCallflow struct {
	Numbers  []string    `json:"numbers"`
	Patterns []string    `json:"patterns"`
	Actions  []rawAction `json:"actions"`
}

type rawAction struct {
	Module string         `json:"module"`
	Data   *rawActionData `json:"data"`
}

type rawActionData struct {
	Action               *string `json:"action"`
	Format               *string `json:"format"`
	Label                *string `json:"label"`
	MediaName            *string `json:"media_name"`
	Method               *string `json:"method"`
	RecordMinSec         *int    `json:"record_min_sec"`
	RecordOnAnswer       *bool   `json:"record_on_answer"`
	RecordOnBridge       *bool   `json:"record_on_bridge"`
	RecordSampleRate     *int    `json:"record_sample_rate"`
	TimeLimit            *int    `json:"time_limit"`
	URL                  *string `json:"url"`
	ShouldFollowTransfer *bool   `json:"should_follow_transfer"`
	Stereo               *bool   `json:"stereo"`
	Announce             *string `json:"announce"`
	AnnounceTo           *string `json:"announce_to"`
	Origin               *string `json:"origin"`
	DTMFLeg              *string `json:"dtmf_leg"`
	Scope                *string `json:"scope"`
}

type rawMetaflows struct {
	BindingDigit *string               `json:"binding_digit"`
	DigitTimeout *int                  `json:"digit_timeout"`
	ListenOn     *string               `json:"listen_on"`
	Numbers      map[string]*rawAction `json:"numbers"`
	Patterns     map[string]*rawAction `json:"patterns"`
}

// field names a setting; the order is the resolution order of a cell.
type field uint8

const (
	fEnabled field = iota
	fFormat
	fTimeLimit
	fRecordMinSec
	fRecordSampleRate
	fRecordOnAnswer
	fRecordOnBridge
	fMethod
	fURL
	fStereo
	fAnnounce
	fAnnounceTo
	numFields
)

var fieldNames = [numFields]string{
	fEnabled:          "enabled",
	fFormat:           "format",
	fTimeLimit:        "time_limit",
	fRecordMinSec:     "record_min_sec",
	fRecordSampleRate: "record_sample_rate",
	fRecordOnAnswer:   "record_on_answer",
	fRecordOnBridge:   "record_on_bridge",
	fMethod:           "method",
	fURL:              "url",
	fStereo:           "stereo",
	fAnnounce:         "announce",
	fAnnounceTo:       "announce_to",
}

// settingOf is the table's description of every field but fEnabled, by
// name: the fields are the settings of table.SettingList, in its order
// (TestFieldsAreTheSettings).
var settingOf = func() (out [numFields]*table.Setting) {
	for f := fEnabled + 1; f < numFields; f++ {
		st, ok := table.SettingNamed(fieldNames[f])
		if !ok {
			panic("compiler field " + fieldNames[f] + " is no setting of the table")
		}
		out[f] = st
	}
	return out
}()

// value is a set or unset setting.
type value struct {
	set bool
	b   bool
	i   int
	s   string
}

func bv(p *bool) value {
	if p == nil {
		return value{}
	}
	return value{set: true, b: *p}
}

func iv(p *int) value {
	if p == nil {
		return value{}
	}
	return value{set: true, i: *p}
}

func sv(p *string) value {
	if p == nil {
		return value{}
	}
	return value{set: true, s: *p}
}

func (s *rawSettings) get(f field) value {
	if s == nil {
		return value{}
	}
	switch f {
	case fEnabled:
		return bv(s.Enabled)
	case fFormat:
		return sv(s.Format)
	case fTimeLimit:
		return iv(s.TimeLimit)
	case fRecordMinSec:
		return iv(s.RecordMinSec)
	case fRecordSampleRate:
		return iv(s.RecordSampleRate)
	case fRecordOnAnswer:
		return bv(s.RecordOnAnswer)
	case fRecordOnBridge:
		return bv(s.RecordOnBridge)
	case fMethod:
		return sv(s.Method)
	case fURL:
		return sv(s.URL)
	case fStereo:
		return bv(s.Stereo)
	case fAnnounce:
		return sv(s.Announce)
	case fAnnounceTo:
		return sv(s.AnnounceTo)
	}
	return value{}
}

// get returns the settings an action's data sets; record_caller takes only
// format, method, time_limit and url.
func (d *rawActionData) get(f field, callerOnly bool) value {
	if d == nil {
		return value{}
	}
	if callerOnly && f != fFormat && f != fMethod && f != fTimeLimit && f != fURL {
		return value{}
	}
	switch f {
	case fFormat:
		return sv(d.Format)
	case fTimeLimit:
		return iv(d.TimeLimit)
	case fRecordMinSec:
		return iv(d.RecordMinSec)
	case fRecordSampleRate:
		return iv(d.RecordSampleRate)
	case fRecordOnAnswer:
		return bv(d.RecordOnAnswer)
	case fRecordOnBridge:
		return bv(d.RecordOnBridge)
	case fMethod:
		return sv(d.Method)
	case fURL:
		return sv(d.URL)
	case fStereo:
		return bv(d.Stereo)
	case fAnnounce:
		return sv(d.Announce)
	case fAnnounceTo:
		return sv(d.AnnounceTo)
	}
	return value{}
}

func (cr *rawCR) dir(key string) *rawNetwork {
	if cr == nil {
		return nil
	}
	switch key {
	case "any":
		return cr.Any
	case "inbound":
		return cr.Inbound
	case "outbound":
		return cr.Outbound
	}
	return nil
}

func (n *rawNetwork) net(key string) *rawSettings {
	if n == nil {
		return nil
	}
	switch key {
	case "any":
		return n.Any
	case "onnet":
		return n.Onnet
	case "offnet":
		return n.Offnet
	}
	return nil
}
