package esl

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/runtime/eslwire"
)

// TestEventGet: Get finds a header by its exact name first, then
// case-insensitively, the first of a repeated header winning, in an
// Event read from the switch (List) and in one built from a map alike.
func TestEventGet(t *testing.T) {
	list := []eslwire.Header{
		{Name: "Event-Name", Value: "CHANNEL_ANSWER"},
		{Name: "unique-id", Value: "folded"},
		{Name: "Unique-ID", Value: "exact"},
		{Name: "Unique-ID", Value: "later"},
		{Name: "variable_Foo", Value: "bar"},
	}
	tests := []struct{ name, want string }{
		{"Unique-ID", "exact"},
		{"UNIQUE-ID", "folded"},
		{"Event-Name", "CHANNEL_ANSWER"},
		{"Event-Nam", ""},
		{"variable_foo", "bar"},
		{"Missing", ""},
	}
	ev := &Event{List: list}
	for _, tt := range tests {
		if got := ev.Get(tt.name); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := ev.Var("Foo"); got != "bar" {
		t.Errorf("Var(Foo) = %q, want bar", got)
	}
	m := &Event{Headers: map[string]string{"Unique-ID": "exact", "Event-Name": "X"}}
	got := []string{m.Get("Unique-ID"), m.Get("unique-id"), m.Get("Missing")}
	if diff := cmp.Diff([]string{"exact", "exact", ""}, got); diff != "" {
		t.Errorf("an Event from a map (-want +got):\n%s", diff)
	}
	var none *Event
	if none.Get("Unique-ID") != "" {
		t.Error("a nil Event has a header")
	}
}

// TestFromWire: an event read from the switch keeps its headers in
// order, without a map, and is named by its first Event-Name.
func TestFromWire(t *testing.T) {
	w := &eslwire.Event{Body: "+OK\n", Headers: []eslwire.Header{
		{Name: "Event-Name", Value: "BACKGROUND_JOB"}, {Name: "Event-Name", Value: "LATER"}, {Name: "Job-UUID", Value: "j1"}}}
	ev := fromWire(w)
	got := struct {
		Name, Body, Job string
		Map             bool
		List            []eslwire.Header
	}{ev.Name, ev.Body, ev.Get("Job-UUID"), ev.Headers != nil, ev.List}
	want := struct {
		Name, Body, Job string
		Map             bool
		List            []eslwire.Header
	}{"BACKGROUND_JOB", "+OK\n", "j1", false, w.Headers}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	if ev.Received.IsZero() {
		t.Error("no Received time")
	}
}
