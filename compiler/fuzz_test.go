package compiler_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// FuzzCompile compiles arbitrary policies of one or two files: the
// compiler must never panic, every error must carry a position (a file and
// a line), and a policy that compiles gives a table whose canonical JSON
// decodes back to the same bytes. The seed corpus in testdata/fuzz holds
// the example policy and every case of testdata/bad.
func FuzzCompile(f *testing.F) {
	f.Add([]byte("package recpol\naccounts: a: call_recording: account: any: any: enabled: true\n"), []byte(""))
	f.Add([]byte("package recpol\naccounts: a: users: u: {}\n"), []byte("package recpol\naccounts: a: devices: d: owner: \"u\"\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		files := []compiler.File{{Name: "a.cue", Data: a}}
		if len(b) > 0 {
			files = append(files, compiler.File{Name: "b.cue", Data: b})
		}
		res := compiler.Options{}.CompileFiles(files)
		for _, d := range res.Diagnostics.Errors() {
			if d.File == "" || d.Line <= 0 {
				t.Fatalf("error without a position: %s", d)
			}
		}
		if res.Diagnostics.HasErrors() != (res.Table == nil) {
			t.Fatalf("table %v with errors %v", res.Table != nil, res.Diagnostics.HasErrors())
		}
		if res.Table == nil {
			return
		}
		enc, err := res.Table.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := table.DecodeBytes(enc, compiler.DefaultsDigest())
		if err != nil {
			t.Fatalf("the compiled table does not decode: %v\n%s", err, enc)
		}
		again, _ := back.MarshalJSON()
		if !bytes.Equal(enc, again) {
			t.Fatalf("the table changed through its JSON:\n%s\n%s", enc, again)
		}
	})
}

// FuzzCheckURL checks the policy's URL validation: a URL it accepts is
// an absolute http(s) URL with a host, no credentials and no whitespace or
// control characters; RedactURL never repeats a password.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://rec.example.com/up", "http://h:8080/a?b=c", "https://user:pw@h/x",
		"ftp://h/x", "https://h/a b", "https://h/\r\nHost: evil", "https:///nohost", "//h/x", "https://[::1]:443/x",
		"https://h/%zz", "https://h/x#frag", "HTTPS://H/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg := compiler.CheckURL(s)
		u, err := url.Parse(s)
		if msg == "" {
			if err != nil {
				t.Fatalf("accepted %q, which does not parse: %v", s, err)
			}
			if u.Scheme != "http" && u.Scheme != "https" {
				t.Fatalf("accepted %q with scheme %q", s, u.Scheme)
			}
			if u.User != nil || u.Host == "" {
				t.Fatalf("accepted %q: user %v host %q", s, u.User, u.Host)
			}
			if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
				t.Fatalf("accepted %q with a space or control character", s)
			}
		}
		red := compiler.RedactURL(s)
		if err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(red, ":"+pw+"@") {
				t.Fatalf("RedactURL(%q) = %q repeats the password", s, red)
			}
		}
	})
}
