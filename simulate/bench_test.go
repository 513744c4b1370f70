package simulate

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicy is one account of 10 users with 2 devices each and 10
// devices without owner, recording external calls of users and calls from
// offnet on the account.
func benchPolicy() string {
	var b strings.Builder
	b.WriteString("package recpol\n\naccounts: acme: {\n\tcall_recording: account: inbound: offnet: enabled: true\n")
	for u := 0; u < 10; u++ {
		fmt.Fprintf(&b, "\tusers: u%02d: call_recording: any: offnet: enabled: true\n", u)
		for d := 0; d < 2; d++ {
			fmt.Fprintf(&b, "\tdevices: \"u%02d-%d\": owner: \"u%02d\"\n", u, d, u)
		}
	}
	for d := 0; d < 10; d++ {
		fmt.Fprintf(&b, "\tdevices: lobby%02d: call_recording: inbound: onnet: enabled: true\n", d)
	}
	b.WriteString("}\n")
	return b.String()
}

func BenchmarkRun(b *testing.B) {
	t := compile(b, benchPolicy())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(t); err != nil {
			b.Fatal(err)
		}
	}
}
