package intentlog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var keyRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// testOptions key a value {"id": "<key>", ...} and collect the corrupt
// lines into *bad.
func testOptions(bad *[]string) Options {
	return Options{
		Key: func(v []byte) (string, error) {
			var x struct {
				ID string `json:"id"`
			}
			err := json.Unmarshal(v, &x)
			return x.ID, err
		},
		ValidKey: keyRE.MatchString,
		Corrupt: func(line []byte, err error) {
			if bad != nil {
				*bad = append(*bad, string(line))
			}
		},
	}
}

func val(key, v string) []byte { return []byte(`{"id":"` + key + `","v":"` + v + `"}`) }

func open(t *testing.T, p string, bad *[]string) *Log {
	t.Helper()
	l, err := Open(p, testOptions(bad))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func strs(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// TestPutDone: the latest value put under a key is its record until the
// key is done with, in the open log and in the log opened again.
func TestPutDone(t *testing.T) {
	type op struct {
		done     bool
		key, val string
	}
	tests := []struct {
		name string
		ops  []op
		want map[string]string
	}{
		{"empty", nil, map[string]string{}},
		{"one", []op{{key: "a", val: "1"}}, map[string]string{"a": string(val("a", "1"))}},
		{"latest wins", []op{{key: "a", val: "1"}, {key: "a", val: "2"}}, map[string]string{"a": string(val("a", "2"))}},
		{"done", []op{{key: "a", val: "1"}, {key: "b", val: "1"}, {done: true, key: "a"}}, map[string]string{"b": string(val("b", "1"))}},
		{"done unknown", []op{{done: true, key: "zz"}}, map[string]string{}},
		{"put after done", []op{{key: "a", val: "1"}, {done: true, key: "a"}, {key: "a", val: "3"}}, map[string]string{"a": string(val("a", "3"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "intents.log")
			l := open(t, p, nil)
			for _, o := range tt.ops {
				var err error
				if o.done {
					err = l.Done(o.key)
				} else {
					err = l.Put(o.key, val(o.key, o.val))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, strs(l.Live())); diff != "" {
				t.Errorf("open log (-want +got):\n%s", diff)
			}
			// Not closed: a process that died.
			var bad []string
			again := open(t, p, &bad)
			defer again.Close()
			if diff := cmp.Diff(tt.want, strs(again.Live())); diff != "" {
				t.Errorf("reopened (-want +got):\n%s", diff)
			}
			if len(bad) > 0 {
				t.Errorf("corrupt lines: %q", bad)
			}
			l.Close()
		})
	}
}

// TestOpenRecovers: a log a crash or a foreign hand left is recovered:
// an unfinished last line is dropped (and the next record does not run
// into it), unreadable lines are handed to Corrupt and left out, the rest
// is read.
func TestOpenRecovers(t *testing.T) {
	good := `{"put":` + string(val("a", "1")) + "}\n"
	tests := []struct {
		name     string
		data     string
		wantLive []string
		wantBad  []string
	}{
		{"torn last line", good + `{"put":{"id":"b"`, []string{"a"}, nil},
		{"torn done", good + `{"done":"a`, []string{"a"}, nil},
		{"not json", good + "{not json\n", []string{"a"}, []string{"{not json"}},
		{"unknown field", `{"put":{"id":"b"},"x":1}` + "\n" + good, []string{"a"}, []string{`{"put":{"id":"b"},"x":1}`}},
		{"invalid key", `{"put":{"id":"../x"}}` + "\n" + `{"done":"A B"}` + "\n" + good, []string{"a"},
			[]string{`{"put":{"id":"../x"}}`, `{"done":"A B"}`}},
		{"neither", `{}` + "\n" + `{"put":{"id":"b"},"done":"b"}` + "\n" + good, []string{"a"},
			[]string{`{}`, `{"put":{"id":"b"},"done":"b"}`}},
		{"null put", `{"put":null}` + "\n" + good, []string{"a"}, []string{`{"put":null}`}},
		{"too large", `{"put":{"id":"b","v":"` + strings.Repeat("x", MaxRecord) + `"}}` + "\n" + good, []string{"a"}, nil},
		{"blank lines", "\n\n" + good + "\n", []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "intents.log")
			if err := os.WriteFile(p, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			var bad []string
			l := open(t, p, &bad)
			if diff := cmp.Diff(tt.wantLive, keys(l.Live())); diff != "" {
				t.Errorf("live (-want +got):\n%s", diff)
			}
			if tt.name == "too large" {
				if len(bad) != 1 || len(bad[0]) <= MaxRecord {
					t.Errorf("corrupt lines: %d, want the large one", len(bad))
				}
			} else if diff := cmp.Diff(tt.wantBad, bad); diff != "" {
				t.Errorf("corrupt (-want +got):\n%s", diff)
			}
			if err := l.Put("c", val("c", "1")); err != nil {
				t.Fatal(err)
			}
			l.Close()
			// The rewritten log reads back whole.
			got, rbad, err := Read(p, testOptions(nil))
			if err != nil || len(rbad) > 0 {
				t.Fatalf("Read: %v %q", err, rbad)
			}
			if diff := cmp.Diff(append(tt.wantLive, "c"), keys(got)); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestNotRegular: a link or a directory in the log's place is refused,
// not followed.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte(`{"put":{"id":"a"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Skip(err)
	}
	sub := filepath.Join(dir, "dir.log")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, sub} {
		if _, err := Open(p, testOptions(nil)); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(%s) = %v, want ErrNotRegular", filepath.Base(p), err)
		}
		if _, _, err := Read(p, testOptions(nil)); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Read(%s) = %v, want ErrNotRegular", filepath.Base(p), err)
		}
	}
}

// TestPutRefuses: a value that could run into other records (a newline,
// too large) or an invalid key is refused, and nothing is written.
func TestPutRefuses(t *testing.T) {
	p := filepath.Join(t.TempDir(), "intents.log")
	l := open(t, p, nil)
	defer l.Close()
	for _, tt := range []struct {
		key string
		v   []byte
	}{
		{"a", []byte("{\"id\":\"a\",\n\"v\":1}")},
		{"a", []byte(`{"id":"a","v":"` + strings.Repeat("x", MaxRecord) + `"}`)},
		{"A B", []byte(`{"id":"A B"}`)},
		{"", []byte(`{"id":""}`)},
	} {
		if err := l.Put(tt.key, tt.v); err == nil {
			t.Errorf("Put(%q, %.40q) succeeded", tt.key, tt.v)
		}
	}
	if b, err := os.ReadFile(p); err != nil || len(b) != 0 {
		t.Errorf("log %q %v, want empty", b, err)
	}
}

// TestPutNotJSON: a value that is not JSON is its own record's loss
// only: the next Open hands it to Corrupt and reads the rest; a value of
// another key is filed under that key.
func TestPutNotJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "intents.log")
	l := open(t, p, nil)
	for _, put := range []struct {
		key string
		v   []byte
	}{{"a", val("a", "1")}, {"b", []byte(`{"id":"b"`)}, {"c", val("x", "1")}, {"d", val("d", "1")}} {
		if err := l.Put(put.key, put.v); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	var bad []string
	again := open(t, p, &bad)
	defer again.Close()
	if diff := cmp.Diff([]string{"a", "d", "x"}, keys(again.Live())); diff != "" {
		t.Errorf("live keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`{"put":{"id":"b"}`}, bad); diff != "" {
		t.Errorf("corrupt (-want +got):\n%s", diff)
	}
}

// TestClosed: a closed log is not written again.
func TestClosed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "intents.log")
	l := open(t, p, nil)
	if err := l.Put("a", val("a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Put("b", val("b", "1")); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if err := l.Done("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Done after Close: %v, want ErrClosed", err)
	}
}

// TestCompaction: a log rewritten over and over stays about the size of
// its live records.
func TestCompaction(t *testing.T) {
	p := filepath.Join(t.TempDir(), "intents.log")
	l := open(t, p, nil)
	defer l.Close()
	for i := range 3 * compactSlack {
		if err := l.Put("a", val("a", string(rune('a'+i%26)))); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > compactSlack+2 {
		t.Errorf("%d records in the log for one live key, want at most %d", n, compactSlack+2)
	}
	live, bad, err := Read(p, testOptions(nil))
	if err != nil || len(bad) > 0 || len(live) != 1 {
		t.Errorf("Read: %v, %d bad, %d live, want 1 live", err, len(bad), len(live))
	}
}

// FuzzOpen: any bytes as a log file are recovered or refused as corrupt,
// never a panic: Open succeeds on a regular file, every live record is
// keyed by its value, the rewritten log reads back without a bad line,
// and opening it again gives the same records.
func FuzzOpen(f *testing.F) {
	good := `{"put":` + string(val("a", "1")) + "}\n"
	f.Add([]byte(good + `{"done":"a"}` + "\n"))
	f.Add([]byte(good + "{not json\n" + `{"put":{"id":"b"`))
	f.Add([]byte(`{"put":null}` + "\n\n" + `{"put":{"id":"x","v":[1,{"a":"\n"}]}}` + "\n"))
	f.Add([]byte(`{"put":"str"}` + "\n" + `{"done":""}` + "\n" + `{"put":{"id":"b"}} {"done":"b"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "intents.log")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := testOptions(nil)
		l, err := Open(p, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		first := l.Live()
		for k, v := range first {
			if got, err := opts.Key(v); err != nil || got != k || !keyRE.MatchString(k) {
				t.Fatalf("live record %q under key %q (%v)", v, k, err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		read, bad, err := Read(p, opts)
		if err != nil || len(bad) > 0 {
			t.Fatalf("the rewritten log: %v %q", err, bad)
		}
		if diff := cmp.Diff(strs(first), strs(read)); diff != "" {
			t.Fatalf("read back (-open +read):\n%s", diff)
		}
		again, err := Open(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if diff := cmp.Diff(strs(first), strs(again.Live())); diff != "" {
			t.Fatalf("second open (-first +second):\n%s", diff)
		}
	})
}

// TestCompactsAsKeysComeAndGo: keys come and go; the log is rewritten
// whenever it holds more than twice the records it needs (plus a margin),
// every rewrite holds exactly the live keys, and a new open finds them.
func TestCompactsAsKeysComeAndGo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "intents.log")
	l := open(t, p, nil)
	const live = 100
	want := map[string]bool{}
	maxRecords, compactions := 0, 0
	records := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.records
	}
	// check compares the log on disk with the keys expected, right
	// after each rewrite (the record that triggered it included).
	check := func(before int) {
		t.Helper()
		n := records()
		maxRecords = max(maxRecords, n)
		if n >= before {
			return
		}
		compactions++
		onDisk, bad, err := Read(p, testOptions(nil))
		if err != nil || len(bad) > 0 {
			t.Fatalf("log after a rewrite: %v %+v", err, bad)
		}
		got := map[string]bool{}
		for k := range onDisk {
			got[k] = true
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("keys on disk after a rewrite (-want +got):\n%s", diff)
		}
	}
	key := func(i int) string { return "r" + strconv.Itoa(i) }
	for i := range 5 * compactSlack {
		for v := range 2 { // put, then put again (a start, then a mask)
			n := records()
			if err := l.Put(key(i), val(key(i), strconv.Itoa(v))); err != nil {
				t.Fatal(err)
			}
			want[key(i)] = true
			check(n)
		}
		if i >= live {
			n := records()
			if err := l.Done(key(i - live)); err != nil {
				t.Fatal(err)
			}
			delete(want, key(i-live))
			check(n)
		}
	}
	if compactions < 5 {
		t.Errorf("%d rewrites of the log", compactions)
	}
	if limit := 2*(live+1) + compactSlack + 1; maxRecords > limit {
		t.Errorf("the log held up to %d records, more than %d", maxRecords, limit)
	}
	l.Close()
	next := open(t, p, nil)
	defer next.Close()
	if diff := cmp.Diff(want, func() map[string]bool {
		got := map[string]bool{}
		for k := range next.Live() {
			got[k] = true
		}
		return got
	}()); diff != "" {
		t.Errorf("live keys after a new open (-want +got):\n%s", diff)
	}
}

// fullDisk writes half of what it is given, then fails as a full disk.
type fullDisk struct {
	file
	full bool
}

func (f *fullDisk) Write(b []byte) (int, error) {
	if !f.full {
		return f.file.Write(b)
	}
	n, _ := f.file.Write(b[:len(b)/2])
	return n, syscall.ENOSPC
}

// TestDiskFull: a record the disk had room for only a part of is cut off,
// so that it does not run into the next record: after the disk has room
// again, the log reads back whole.
func TestDiskFull(t *testing.T) {
	p := filepath.Join(t.TempDir(), "intents.log")
	l := open(t, p, nil)
	if err := l.Put("r1", val("r1", "1")); err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{file: l.f, full: true}
	l.f = disk
	if err := l.Put("r2", val("r2", "1")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v", err)
	}
	disk.full = false
	if err := l.Put("r3", val("r3", "1")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	live, bad, err := Read(p, testOptions(nil))
	if err != nil || len(bad) > 0 {
		t.Fatalf("log after a full disk: %v %+v", err, bad)
	}
	if diff := cmp.Diff([]string{"r1", "r3"}, keys(live)); diff != "" {
		t.Errorf("live keys (-want +got):\n%s", diff)
	}
}
