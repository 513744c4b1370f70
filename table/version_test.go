package table_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/table"
)

// TestVersionOfManyAccounts checks the version of tables whose accounts
// are digested in parallel (digestAccounts) against its definition: the
// hash of the format, the built-in defaults' digest and each account's
// canonical JSON, in account order; and their JSON, whose accounts are
// encoded in parallel too (WriteJSON), against that of the accounts
// one by one.
func TestVersionOfManyAccounts(t *testing.T) {
	for _, n := range []int{1, 3, 40} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			if err := gen.Write(dir, gen.Options{Accounts: n, Users: 2, Devices: 3, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			res, err := compiler.Options{}.Compile(dir)
			if err != nil || res.Table == nil {
				t.Fatal(err, res.Diagnostics)
			}
			b, err := res.Table.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Accounts map[string]json.RawMessage `json:"accounts"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for id := range doc.Accounts {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			h := sha256.New()
			fmt.Fprintf(h, "recpol table format %d\nbuiltin %s\n", table.FormatVersion, compiler.DefaultsDigest())
			for _, id := range ids {
				fmt.Fprintf(h, "account %s %x\n", id, sha256.Sum256(doc.Accounts[id]))
			}
			want := "sha256:" + hex.EncodeToString(h.Sum(nil))
			if diff := cmp.Diff(want, res.Table.Version); diff != "" {
				t.Errorf("version (-want +got):\n%s", diff)
			}
			// The table's JSON, accounts encoded in parallel, is that of
			// its accounts one by one.
			serial := []byte(`{"accounts":{`)
			for i, id := range ids {
				if i > 0 {
					serial = append(serial, ',')
				}
				serial = fmt.Appendf(serial, "%q:", id)
				serial = append(serial, table.AccountJSON(res.Table.Accounts[id])...)
			}
			serial = fmt.Appendf(serial, "},\"format_version\":%d,\"version\":%q}\n", table.FormatVersion, res.Table.Version)
			if diff := cmp.Diff(string(serial), string(b)); diff != "" {
				t.Errorf("JSON (-accounts one by one +table):\n%s", diff)
			}
			if len(ids) != n {
				t.Errorf("%d accounts, want %d", len(ids), n)
			}
		})
	}
}
