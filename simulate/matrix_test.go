package simulate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/recpol/recpol/table"
)

func TestMatrixAllCellsOK(t *testing.T) {
	rep, err := RunMatrix()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != 32 {
		t.Fatalf("%d cells, want 32", len(rep.Cells))
	}
	counts := map[string]int{}
	for _, c := range rep.Cells {
		counts[c.Documented]++
		if !c.OK {
			t.Errorf("cell %s %s.%s %s: simulated %s, documented %s", c.Table, c.Direction, c.Network, c.Call, c.Simulated, c.Documented)
		}
	}
	if counts[DocUndocumented] != 8 || counts[DocYesIfInboundOff] != 3 {
		t.Errorf("cells by documented value: %v", counts)
	}
	want := []string{"condition-inbound-onnet", "condition-inbound-offnet", "device-over-user", "device-undefined-uses-user", "account-independent-of-endpoint"}
	if len(rep.Checks) != len(want) {
		t.Fatalf("%d checks, want %d", len(rep.Checks), len(want))
	}
	for i, c := range rep.Checks {
		if c.Name != want[i] || !c.OK {
			t.Errorf("check %d: %+v, want %s ok", i, c, want[i])
		}
	}
	if !rep.OK {
		t.Error("report not ok")
	}
}

// TestMatrixDataIs24Documented guards the transcription of seed 002: 24
// cells, each (table, direction, network, call) once.
func TestMatrixDataIs24Documented(t *testing.T) {
	cells, err := documentedMatrix()
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 24 {
		t.Fatalf("%d documented cells, want 24", len(cells))
	}
	seen := map[[4]string]bool{}
	for _, c := range cells {
		k := [4]string{c.Table, c.Direction, c.Network, c.Call}
		if seen[k] {
			t.Errorf("cell %v twice", k)
		}
		seen[k] = true
	}
	onDisk, err := os.ReadFile(filepath.Join("testdata", "matrix", "kazoo-002.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(kazoo002) {
		t.Error("embedded matrix differs from testdata/matrix/kazoo-002.json")
	}
}

// Deliberately wrong decisions: the matrix must catch each.
func calleeUsesOutbound(a *table.Account, c table.Call) ([]table.Recording, error) {
	recs, err := a.Decide(c)
	if err != nil {
		return nil, err
	}
	var out []table.Recording
	for _, r := range recs {
		if r.Scope != table.ScopeCallee {
			out = append(out, r)
		}
	}
	for _, id := range a.Ringing(c) {
		cell := a.Devices[id].Cells.Get(table.Outbound, c.From.Network())
		if cell.Record {
			out = append(out, table.Recording{Scope: table.ScopeCallee, Endpoint: id, Leg: table.LegB, Cell: cell})
		}
	}
	return out, nil
}

func accountOutboundFirst(a *table.Account, c table.Call) ([]table.Recording, error) {
	recs, err := a.Decide(c)
	if err != nil {
		return nil, err
	}
	if r, ok := a.AccountOutbound(c.To.Network()); ok && len(recs) > 0 && recs[0].Scope == table.ScopeAccount {
		recs[0] = r
	}
	return recs, nil
}

func deviceIgnoresOwner(a *table.Account, c table.Call) ([]table.Recording, error) {
	recs, err := a.Decide(c)
	if err != nil {
		return nil, err
	}
	// Pretends device settings are never overridden by anything: a device
	// with an owner records whenever its owner's cell records.
	out := recs[:0:0]
	for _, r := range recs {
		out = append(out, r)
	}
	for _, id := range a.Ringing(c) {
		d := a.Devices[id]
		if u := a.Users[d.Owner]; u != nil && u.Cells.Get(table.Inbound, c.From.Network()).Record && !d.Cells.Get(table.Inbound, c.From.Network()).Record {
			out = append(out, table.Recording{Scope: table.ScopeCallee, Endpoint: id, Leg: table.LegB})
		}
	}
	return out, nil
}

func TestMatrixCatchesWrongDecisions(t *testing.T) {
	for name, decide := range map[string]decideFunc{
		"callee uses outbound cell":             calleeUsesOutbound,
		"account outbound before inbound":       accountOutboundFirst,
		"user overrides a device that disabled": deviceIgnoresOwner,
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := runMatrixWith(decide)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK {
				t.Fatal("matrix reported ok for a wrong decision")
			}
		})
	}
}
