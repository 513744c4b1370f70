package simulate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpectations(t *testing.T) {
	r, err := Run(compile(t, smallPolicy))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		src     string
		want    []ExpectResult
		wantErr string
	}{
		{
			name: "hold and fail",
			src: `expect: {
	"offnet is recorded by the account": {account: "acme", from: "offnet", to: "*", account_recording: true, account_origin: "inbound from offnet to account"}
	"internal calls start no account recording": {from: "device:*", to: "*", account_recording: false}
	"bob's desk records external calls": {from: "device:bob-desk", to: "offnet", caller_recording: true, recordings: 1}
	"every device records offnet calls": {from: "device:*", to: "offnet", caller_recording: true}
	"typo": {account: "acme", from: "device:bob-dsk", to: "*", recordings: 0}
}`,
			want: []ExpectResult{
				{Name: "offnet is recorded by the account", ExpectPos: ExpectPos{"expect.cue", 2, 2}, OK: true, Calls: 5, Detail: "holds for 5 calls"},
				{Name: "internal calls start no account recording", ExpectPos: ExpectPos{"expect.cue", 3, 2}, OK: true, Calls: 15, Detail: "holds for 15 calls"},
				{Name: "bob's desk records external calls", ExpectPos: ExpectPos{"expect.cue", 4, 2}, OK: true, Calls: 1, Detail: "holds for 1 calls"},
				{Name: "every device records offnet calls", ExpectPos: ExpectPos{"expect.cue", 5, 2}, OK: false, Calls: 3, Detail: "2 of 3 calls fail: " +
					"account acme, device:bob-soft -> offnet records -: caller_recording is false, want true; " +
					"account acme, device:lobby -> offnet records -: caller_recording is false, want true"},
				{Name: "typo", ExpectPos: ExpectPos{"expect.cue", 6, 2}, OK: false, Detail: `selects no call (account "acme", from "device:bob-dsk", to "*")`},
			},
		},
		{name: "unknown field", src: `expect: x: {from: "offnet", to: "*", recorded: true}`, wantErr: "expect.cue:1:38: expect.x.recorded: unknown field \"recorded\""},
		{name: "wrong type", src: `expect: x: {from: "offnet", to: "*", recordings: "two"}`, wantErr: "expect.cue:1:50: expect.x.recordings: conflicting values"},
		{name: "unknown top level", src: `expects: x: {}`, wantErr: "expect.cue:1:1: expects: unknown top-level field"},
		{name: "syntax", src: `expect: {`, wantErr: "expect.cue:1:10: expected"},
		{name: "empty", src: `expect: {}`, wantErr: "expect.cue: no expectations"},
		{name: "no assertion", src: "expect: {\n\tx: {from: \"offnet\", to: \"*\"}\n}", wantErr: "expect.cue:2:2: expect.x: asserts nothing: it selects calls (from/to)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exps, err := ParseExpectations("expect.cue", []byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rep := r.Check("expect.cue", exps)
			if diff := cmp.Diff(tt.want, rep.Expectations); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if rep.OK {
				t.Error("report ok despite failures")
			}
		})
	}
}
