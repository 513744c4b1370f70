// Package gen writes seeded, realistic recpol policies for benchmarks and
// scale tests: one file per account with a mix of settings at every scope,
// device owners, callflows and metaflows. The same options and seed always
// give the same files.
package gen

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Options say how large a policy to generate.
type Options struct {
	Accounts int    // number of accounts
	Users    int    // users per account
	Devices  int    // devices per account
	Seed     uint64 // the same seed gives the same policy
}

// Write writes the policy into dir (created if needed): shared.cue with the
// defaults and a template, then one file per account.
func Write(dir string, o Options) error {
	if o.Accounts < 0 || o.Users < 0 || o.Devices < 0 {
		return fmt.Errorf("generating policy: counts must not be negative")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("generating policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shared.cue"), []byte(Shared()), 0o644); err != nil {
		return fmt.Errorf("generating policy: %w", err)
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x7265_6370_6f6c))
	for i := 0; i < o.Accounts; i++ {
		name := AccountID(i)
		src := Account(r, name, o.Users, o.Devices)
		if err := os.WriteFile(filepath.Join(dir, name+".cue"), []byte(src), 0o644); err != nil {
			return fmt.Errorf("generating policy: %w", err)
		}
	}
	return nil
}

// AccountID is the id of the i-th generated account.
func AccountID(i int) string { return fmt.Sprintf("acct-%05d", i) }

// Shared returns the shared part of a generated policy: defaults and a
// template that applies to every account.
func Shared() string {
	return `package recpol

defaults: {
	format:             "mp3"
	record_sample_rate: 8000
}

accounts: [_]: call_recording: endpoint: any: any: record_min_sec: 1
`
}

var (
	directions = []string{"any", "inbound", "outbound"}
	networks   = []string{"any", "onnet", "offnet"}
	formats    = []string{"mp3", "wav"}
	rates      = []int{8000, 16000, 32000, 44100, 48000}
)

// Account returns the source of one generated account file.
func Account(r *rand.Rand, id string, users, devices int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package recpol\n\naccounts: %q: {\n", id)
	if r.IntN(3) > 0 {
		b.WriteString("\tcall_recording: {\n")
		b.WriteString("\t\taccount: ")
		writeCR(&b, r, 2, "\t\t")
		if r.IntN(2) == 0 {
			b.WriteString("\t\tendpoint: ")
			writeCR(&b, r, 1, "\t\t")
		}
		b.WriteString("\t}\n")
	}
	if r.IntN(4) == 0 {
		b.WriteString("\tmetaflows: {\n\t\tbinding_digit: \"*\"\n\t\tnumbers: {\n")
		b.WriteString("\t\t\t\"72\": {module: \"record_call\", data: action: \"mask\"}\n")
		b.WriteString("\t\t\t\"73\": {module: \"record_call\", data: action: \"unmask\"}\n")
		b.WriteString("\t\t}\n\t}\n")
	}
	if users > 0 {
		b.WriteString("\tusers: {\n")
		for u := 0; u < users; u++ {
			fmt.Fprintf(&b, "\t\t\"u%03d\": {", u)
			if r.IntN(2) == 0 {
				b.WriteString("\n\t\t\tcall_recording: ")
				writeCR(&b, r, 2, "\t\t\t")
				if r.IntN(8) == 0 {
					b.WriteString("\t\t\tmetaflows: numbers: \"71\": {module: \"record_call\", data: action: \"toggle\"}\n")
				}
				b.WriteString("\t\t")
			}
			b.WriteString("}\n")
		}
		b.WriteString("\t}\n")
	}
	if devices > 0 {
		b.WriteString("\tdevices: {\n")
		for d := 0; d < devices; d++ {
			fmt.Fprintf(&b, "\t\t\"d%03d\": {", d)
			if users > 0 && r.IntN(5) > 0 {
				fmt.Fprintf(&b, "\n\t\t\towner: \"u%03d\"", r.IntN(users))
			}
			if r.IntN(3) == 0 {
				b.WriteString("\n\t\t\tcall_recording: ")
				writeCR(&b, r, 1, "\t\t\t")
				b.WriteString("\t\t")
			} else if strings.HasSuffix(b.String(), "\"") {
				b.WriteString("\n\t\t")
			}
			b.WriteString("}\n")
		}
		b.WriteString("\t}\n")
	}
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, "\tcallflows: {\n\t\tmain: {\n\t\t\tnumbers: [\"%d\"]\n", 1000+r.IntN(9000))
		b.WriteString("\t\t\tactions: [{module: \"record_call\", data: {action: \"start\", label: \"Main line\"}}]\n\t\t}\n")
		b.WriteString("\t\tvoicemail: {\n\t\t\tpatterns: [\"^\\\\*97\"]\n")
		b.WriteString("\t\t\tactions: [{module: \"record_caller\", data: time_limit: 300}]\n\t\t}\n\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// writeCR writes a call_recording object with up to n settings blocks.
func writeCR(b *strings.Builder, r *rand.Rand, n int, indent string) {
	b.WriteString("{\n")
	used := map[string]bool{}
	for i := 0; i < 1+r.IntN(n); i++ {
		d, nw := directions[r.IntN(3)], networks[r.IntN(3)]
		if used[d+nw] {
			continue
		}
		used[d+nw] = true
		fmt.Fprintf(b, "%s\t%s: %s: {enabled: %t", indent, d, nw, r.IntN(3) > 0)
		if r.IntN(3) == 0 {
			fmt.Fprintf(b, ", format: %q", formats[r.IntN(2)])
		}
		if r.IntN(4) == 0 {
			fmt.Fprintf(b, ", record_sample_rate: %d", rates[r.IntN(len(rates))])
		}
		if r.IntN(4) == 0 {
			fmt.Fprintf(b, ", time_limit: %d", 60*(1+r.IntN(120)))
		}
		if r.IntN(6) == 0 {
			b.WriteString(", record_on_answer: true")
		}
		if r.IntN(8) == 0 {
			fmt.Fprintf(b, ", url: %q", "https://store.example.com/rec")
		}
		b.WriteString("}\n")
	}
	b.WriteString(indent + "}\n")
}
