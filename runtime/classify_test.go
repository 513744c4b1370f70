package runtime

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/table"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		cls     Classify
		vars    map[string]string
		channel string
		want    legClass
		ok      bool
	}{
		{"recpol onnet", Classify{Preset: "recpol"}, map[string]string{"recpol_account": "acme", "recpol_device": "d1", "recpol_network": "onnet"}, "", legClass{"acme", "d1", table.Onnet}, true},
		{"recpol offnet", Classify{Preset: "recpol"}, map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}, "", legClass{"acme", "", table.Offnet}, true},
		{"recpol device forwarded offnet", Classify{Preset: "recpol"}, map[string]string{"recpol_account": "acme", "recpol_device": "d1", "recpol_network": "offnet"}, "", legClass{"acme", "d1", table.Offnet}, true},
		{"recpol no network yet", Classify{Preset: "recpol"}, map[string]string{"recpol_account": "acme"}, "", legClass{}, false},
		{"recpol nothing", Classify{Preset: "recpol"}, map[string]string{}, "", legClass{}, false},
		{"kazoo device", Classify{Preset: "kazoo"}, map[string]string{"ecallmgr_account-id": "a1b2", "ecallmgr_authorizing-id": "dev9", "ecallmgr_owner-id": "u1"}, "", legClass{"a1b2", "dev9", table.Onnet}, true},
		{"kazoo carrier", Classify{Preset: "kazoo"}, map[string]string{"ecallmgr_account-id": "a1b2", "ecallmgr_resource-type": "offnet-origination"}, "", legClass{"a1b2", "", table.Offnet}, true},
		{"kazoo inception", Classify{Preset: "kazoo"}, map[string]string{"ecallmgr_account-id": "a1b2", "ecallmgr_inception": "+15550100@carrier"}, "", legClass{"a1b2", "", table.Offnet}, true},
		{"freeswitch user", Classify{Preset: "freeswitch"}, map[string]string{"domain_name": "acme.example", "user_name": "1001"}, "sofia/internal/1001@acme.example", legClass{"acme.example", "1001", table.Onnet}, true},
		{"freeswitch gateway", Classify{Preset: "freeswitch"}, map[string]string{"domain_name": "acme.example"}, "sofia/gateway/carrier/+15550100", legClass{"acme.example", "", table.Offnet}, true},
		{"custom variables", Classify{Preset: "recpol", Account: "X_Tenant", Device: "X_Phone"}, map[string]string{"x_tenant": "acme", "x_phone": "p1", "recpol_network": "onnet"}, "", legClass{"acme", "p1", table.Onnet}, true},
	}
	for _, tc := range tests {
		got, ok := newClassifier(tc.cls).classify(tc.vars, tc.channel)
		if ok != tc.ok || (ok && !cmp.Equal(got, tc.want, cmp.AllowUnexported(legClass{}))) {
			t.Errorf("%s: classify = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
