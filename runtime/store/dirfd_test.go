package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStorageDirs: a recording is moved in and its sidecar written the
// same way whether storage's directories are opened at once (openat2,
// where the kernel has it) or checked component by component
// (Store.pathDirs): mode 0600 whatever the switch's, the sidecar the
// metadata, no temporary file left, a stale one replaced, no sidecar for
// a recording deleted first, and a symbolic link planted among the
// directories refused, nothing written through it.
func TestStorageDirs(t *testing.T) {
	t.Parallel()
	type outcome struct {
		Mode       os.FileMode // of the stored file, once moved
		Sidecar    bool
		SidecarID  string
		Leftovers  []string // in the day's directory, besides the recording and its sidecar
		UnsafePath bool     // the sidecar's writing refused with ErrUnsafePath
		Outside    int      // files written through a link
	}
	tests := []struct {
		name  string
		perm  os.FileMode // of the file in the spool
		after func(t *testing.T, day, media, outside string)
		want  outcome
	}{
		{name: "0600 in the spool", perm: 0o600,
			want: outcome{Mode: 0o600, Sidecar: true, SidecarID: "x"}},
		{name: "0644 in the spool", perm: 0o644,
			want: outcome{Mode: 0o600, Sidecar: true, SidecarID: "x"}},
		{name: "a stale temporary sidecar", perm: 0o600,
			after: func(t *testing.T, day, _, _ string) {
				if err := os.WriteFile(filepath.Join(day, "x.json.tmp"), []byte("stale"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: outcome{Mode: 0o600, Sidecar: true, SidecarID: "x"}},
		{name: "deleted before its sidecar", perm: 0o600,
			after: func(t *testing.T, _, media, _ string) {
				if err := os.Remove(media); err != nil {
					t.Fatal(err)
				}
			},
			want: outcome{Mode: 0o600}},
		{name: "a link planted as the day's directory", perm: 0o600,
			after: func(t *testing.T, day, media, outside string) {
				if err := os.Rename(media, filepath.Join(outside, "x.wav")); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(day); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, day); err != nil {
					t.Fatal(err)
				}
			},
			want: outcome{Mode: 0o600, UnsafePath: true, Outside: 1}},
	}
	for _, pathDirs := range []bool{false, true} {
		for _, tc := range tests {
			name := tc.name
			if pathDirs {
				name += ", component by component"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				s := e.open(t)
				s.pathDirs = pathDirs
				src := filepath.Join(e.spool, "x.wav")
				writeWAV(t, src, 8000, 1000)
				if err := os.Chmod(src, tc.perm); err != nil {
					t.Fatal(err)
				}
				m := meta("x")
				// The sidecar is written below, by hand, after tc.after:
				// moveIn's part first.
				unlock := s.lock("x")
				j := &journal{Version: 1, State: stReceived, Src: src, Meta: m}
				if fi, err := os.Lstat(src); err == nil {
					j.srcInfo = fi
				}
				if done, _, err := s.check(j); done || err != nil {
					t.Fatalf("check: %v %v", done, err)
				}
				j.Meta.SHA256 = j.sum
				j.Dst = s.mediaPath(j.Meta)
				err := s.moveIn(j)
				unlock()
				if err != nil {
					t.Fatalf("moveIn: %v", err)
				}
				media, day := j.Dst, filepath.Dir(j.Dst)
				outside := t.TempDir()
				var got outcome
				if fi, err := os.Lstat(media); err == nil {
					got.Mode = fi.Mode()
				}
				if tc.after != nil {
					tc.after(t, day, media, outside)
				}
				unlock = s.lock("x")
				err = s.writeSidecarLocked("x", media, j.Meta)
				unlock()
				got.UnsafePath = errors.Is(err, ErrUnsafePath)
				if err != nil && !got.UnsafePath {
					t.Fatalf("writeSidecarLocked: %v", err)
				}
				if b, err := os.ReadFile(filepath.Join(day, "x.json")); err == nil {
					var sm Metadata
					if err := json.Unmarshal(b, &sm); err != nil {
						t.Fatal(err)
					}
					got.Sidecar, got.SidecarID = true, sm.RecordingID
				}
				if des, err := os.ReadDir(day); err == nil {
					for _, de := range des {
						if n := de.Name(); n != "x.wav" && n != "x.json" {
							got.Leftovers = append(got.Leftovers, n)
						}
					}
				}
				des, _ := os.ReadDir(outside)
				got.Outside = len(des)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}
