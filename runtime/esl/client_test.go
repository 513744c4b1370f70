package esl

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/runtime/fakeswitch"
	"github.com/recpol/recpol/scenario"
)

func TestConnectAPI(t *testing.T) {
	srv, addr := startSwitch(t, "127.0.0.1:0", fakeswitch.Config{})
	c, rec := runClient(t, testConfig(addr))
	_, core := rec.waitConnected(t, 0)
	if core != srv.CoreUUID() {
		t.Errorf("Connected(%q), switch Core-UUID %q", core, srv.CoreUUID())
	}
	uuids, err := srv.StartCall(scenario.Call{ID: "c1",
		Legs:  []scenario.Leg{{Name: "a", CallerIDNumber: "1001", DestinationNumber: "1002"}},
		Steps: []scenario.Step{{AtMS: 0, Do: scenario.DoCreate, Leg: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(0)
	rec.waitEvent(t, 0, "CHANNEL_CREATE", uuids["a"])
	got, err := c.API(context.Background(), "uuid_exists "+uuids["a"])
	if diff := cmp.Diff("true", got); diff != "" || err != nil {
		t.Errorf("uuid_exists: err %v, diff %s", err, diff)
	}
	if _, err := c.API(context.Background(), "nope"); !errors.Is(err, ErrRejected) {
		t.Errorf("unknown api: %v", err)
	}
}
