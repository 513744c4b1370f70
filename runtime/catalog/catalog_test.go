package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/recpol/recpol/internal/catalogtest"
	"github.com/recpol/recpol/runtime/catalog"
)

func TestMain(m *testing.M) { catalogtest.Main(m) }

var drivers = []struct {
	name string
	cfg  func(testing.TB) catalog.Config
}{
	{"sqlite", catalogtest.SQLite},
	{"postgres", catalogtest.Postgres},
}

// forDrivers runs f once per database, each with a fresh one.
func forDrivers(t *testing.T, f func(t *testing.T, cfg catalog.Config)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { f(t, d.cfg(t)) })
	}
}

func open(t testing.TB, cfg catalog.Config) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// rec makes a stored recording starting sec seconds after t0.
func rec(id string, sec int, mod ...func(*catalog.Recording)) catalog.Recording {
	r := catalog.Recording{
		ID: id, CallID: "call-" + id, InteractionID: "ix-" + id, Account: "acme",
		Endpoint: "device:d1", Owner: "user:u1", Origin: "inbound", Scope: "callee",
		Start: t0.Add(time.Duration(sec) * time.Second), State: catalog.StateStored,
		Path: "/s/" + id + ".wav", Doc: []byte(`{"recording_id":"` + id + `"}`),
	}
	for _, m := range mod {
		m(&r)
	}
	return r
}

func put(t testing.TB, c *catalog.Catalog, rs ...catalog.Recording) {
	t.Helper()
	ops := make([]catalog.Op, len(rs))
	for i, r := range rs {
		ops[i] = catalog.PutRecording(r)
	}
	if err := c.Apply(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
}

func ids(rs []catalog.Recording) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// ignoreStamps leaves out the times the catalog sets itself.
var ignoreStamps = cmpopts.IgnoreFields(catalog.Recording{}, "CreatedAt", "UpdatedAt")

func TestPutGet(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		want := rec("r1", 0, func(r *catalog.Recording) {
			r.Start = r.Start.Add(123456 * time.Microsecond)
			r.Flags = []string{"sample-rate-mismatch", "a", "a"}
		})
		// is reads r1 and compares it with want, the catalog's stamps aside.
		is := func(what string, want catalog.Recording) catalog.Recording {
			t.Helper()
			got, err := c.Get(ctx, "r1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, ignoreStamps); diff != "" {
				t.Errorf("Get %s (-want +got):\n%s", what, diff)
			}
			return got
		}
		put(t, c, want)
		want.Flags = []string{"a", "sample-rate-mismatch"}
		if got := is("after a put", want); got.CreatedAt.IsZero() || got.UpdatedAt.Before(got.CreatedAt) {
			t.Errorf("stamps: created %v updated %v", got.CreatedAt, got.UpdatedAt)
		}
		// A second put replaces the row but keeps its hold.
		if err := c.Apply(ctx, catalog.SetHold("r1", true)); err != nil {
			t.Fatal(err)
		}
		want.State, want.Path, want.Hold = catalog.StateUploaded, "/moved.wav", true
		changed := want
		changed.Hold = false
		put(t, c, changed)
		is("after re-put", want)
		// A put that changes indexed columns (the same-columns update
		// finds nothing) replaces them all, and the filters follow.
		want.Owner, want.Endpoint, want.Start, want.State = "user:u2", "device:d2", want.Start.Add(time.Second), catalog.StateStored
		changed = want
		changed.Hold = false
		put(t, c, changed)
		is("after a put with other owner and start", want)
		for _, tc := range []struct {
			f    catalog.Filter
			want []string
		}{
			{catalog.Filter{Owner: "user:u2"}, []string{"r1"}},
			{catalog.Filter{Owner: "user:u1"}, []string{}},
			{catalog.Filter{Endpoint: "device:d2", From: want.Start, Until: want.Start.Add(time.Microsecond)}, []string{"r1"}},
			{catalog.Filter{State: catalog.StateUploaded}, []string{}},
			{catalog.Filter{State: catalog.StateStored}, []string{"r1"}},
		} {
			p, err := c.Search(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ids(p.Items)); diff != "" {
				t.Errorf("Search(%+v) (-want +got):\n%s", tc.f, diff)
			}
		}
		if _, err := c.Get(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("Get(nope) = %v, want ErrNotFound", err)
		}
	})
}

func TestSearchOrderAndPaging(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		// Ten recordings, several starting at the same instant, put out of
		// order: the order is (start, id).
		var rs []catalog.Recording
		for i, id := range []string{"j", "b", "e", "a", "h", "c", "g", "d", "i", "f"} {
			rs = append(rs, rec(id, i%3))
		}
		put(t, c, rs...)
		sort.Slice(rs, func(i, j int) bool {
			if !rs[i].Start.Equal(rs[j].Start) {
				return rs[i].Start.Before(rs[j].Start)
			}
			return rs[i].ID < rs[j].ID
		})
		for _, limit := range []int{1, 3, 4, 10, 11} {
			t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
				var got []string
				pages := 0
				f := catalog.Filter{Account: "acme", Limit: limit, Total: true}
				for {
					p, err := c.Search(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if p.Total != len(rs) {
						t.Errorf("Total = %d, want %d", p.Total, len(rs))
					}
					got = append(got, ids(p.Items)...)
					if p.NextCursor == "" {
						break
					}
					if pages > len(rs) {
						t.Fatal("paging does not end")
					}
					f.Cursor = p.NextCursor
				}
				if diff := cmp.Diff(ids(rs), got); diff != "" {
					t.Errorf("pages (-want +got):\n%s", diff)
				}
				if want := (len(rs) + limit - 1) / limit; pages != want {
					t.Errorf("%d pages, want %d", pages, want)
				}
			})
		}
		p, err := c.Search(ctx, catalog.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != -1 || p.NextCursor != "" || len(p.Items) != len(rs) {
			t.Errorf("default page: total %d, next %q, %d items", p.Total, p.NextCursor, len(p.Items))
		}
	})
}

func TestSearchFilters(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		put(t, c,
			rec("a1", 0, func(r *catalog.Recording) { r.InteractionID = "ix1"; r.CallID = "c1" }),
			rec("a2", 10, func(r *catalog.Recording) {
				r.InteractionID = "ix1"
				r.CallID = "c2"
				r.Endpoint = "device:d2"
				r.Scope = "account"
			}),
			rec("a3", 20, func(r *catalog.Recording) { r.Owner = "user:u2"; r.Origin = "outbound" }),
			rec("b1", 5, func(r *catalog.Recording) { r.Account = "beta"; r.State = catalog.StateUploaded }),
			rec("b2", 30, func(r *catalog.Recording) { r.Account = "beta"; r.State = catalog.StateQuarantined }),
			rec("x1", 40, func(r *catalog.Recording) { r.State = catalog.StateDeleted }),
		)
		for _, tc := range []struct {
			name string
			f    catalog.Filter
			want []string
		}{
			{"all but deleted", catalog.Filter{}, []string{"a1", "b1", "a2", "a3", "b2"}},
			{"account", catalog.Filter{Account: "acme"}, []string{"a1", "a2", "a3"}},
			{"endpoint", catalog.Filter{Endpoint: "device:d2"}, []string{"a2"}},
			{"owner", catalog.Filter{Owner: "user:u2"}, []string{"a3"}},
			{"call", catalog.Filter{CallID: "c2"}, []string{"a2"}},
			{"interaction", catalog.Filter{InteractionID: "ix1"}, []string{"a1", "a2"}},
			{"origin", catalog.Filter{Origin: "outbound"}, []string{"a3"}},
			{"scope", catalog.Filter{Scope: "account"}, []string{"a2"}},
			{"state", catalog.Filter{State: catalog.StateQuarantined}, []string{"b2"}},
			{"deleted when asked", catalog.Filter{State: catalog.StateDeleted}, []string{"x1"}},
			{"from inclusive", catalog.Filter{From: t0.Add(10 * time.Second)}, []string{"a2", "a3", "b2"}},
			{"until exclusive", catalog.Filter{Until: t0.Add(10 * time.Second)}, []string{"a1", "b1"}},
			{"account and range", catalog.Filter{Account: "acme", From: t0.Add(time.Second), Until: t0.Add(21 * time.Second)}, []string{"a2", "a3"}},
			{"none", catalog.Filter{Account: "acme", CallID: "c3"}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := c.Search(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, ids(p.Items)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
		if _, err := c.Search(ctx, catalog.Filter{State: "lost"}); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("Search(state lost) = %v, want ErrInvalid", err)
		}
		got, err := c.Interaction(ctx, "ix1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a1", "a2"}, ids(got)); diff != "" {
			t.Errorf("Interaction (-want +got):\n%s", diff)
		}
	})
}

func TestBadCursor(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		put(t, c, rec("a", 0), rec("b", 1), rec("c", 2))
		p, err := c.Search(ctx, catalog.Filter{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if p.NextCursor == "" {
			t.Fatal("no next cursor")
		}
		for _, cur := range []string{"%%%", "AA", "eA", p.NextCursor[:2], p.NextCursor + "=="} {
			if _, err := c.Search(ctx, catalog.Filter{Cursor: cur}); !errors.Is(err, catalog.ErrBadCursor) {
				t.Errorf("Search(cursor %q) = %v, want ErrBadCursor", cur, err)
			}
		}
		// A search cursor is not an uploads or audit cursor.
		if _, _, err := c.Uploads(ctx, catalog.UploadStatePending, 1, p.NextCursor); !errors.Is(err, catalog.ErrBadCursor) {
			t.Errorf("Uploads(search cursor) = %v, want ErrBadCursor", err)
		}
		if _, _, err := c.ListAudit(ctx, catalog.AuditFilter{}, 1, p.NextCursor); !errors.Is(err, catalog.ErrBadCursor) {
			t.Errorf("ListAudit(search cursor) = %v, want ErrBadCursor", err)
		}
	})
}

func TestStateHoldPurge(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		put(t, c,
			rec("old1", 0),
			rec("old2", 1, func(r *catalog.Recording) { r.State = catalog.StateUploaded }),
			rec("held", 2),
			rec("dead", 3, func(r *catalog.Recording) { r.State = catalog.StateDead }),
			rec("other", 4, func(r *catalog.Recording) { r.Account = "beta" }),
			rec("new", 100),
		)
		if err := c.Apply(ctx, catalog.SetHold("held", true)); err != nil {
			t.Fatal(err)
		}
		cands, err := c.PurgeCandidates(ctx, "acme", t0.Add(50*time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"old1", "old2"}, ids(cands)); diff != "" {
			t.Errorf("PurgeCandidates (-want +got):\n%s", diff)
		}
		cands, err = c.PurgeCandidates(ctx, "", t0.Add(50*time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"old1", "old2", "other"}, ids(cands)); diff != "" {
			t.Errorf("PurgeCandidates, every account (-want +got):\n%s", diff)
		}
		// A held recording is not deleted; the others are, and disappear
		// from searches and from the candidates.
		if err := c.Apply(ctx, catalog.SetState("held", catalog.StateDeleted)); !errors.Is(err, catalog.ErrHeld) {
			t.Errorf("delete held = %v, want ErrHeld", err)
		}
		if err := c.Apply(ctx, catalog.SetState("old1", catalog.StateDeleted), catalog.SetState("old2", catalog.StateDeleted, "purged")); err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, catalog.SetState("nope", catalog.StateDeleted)); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("delete missing = %v, want ErrNotFound", err)
		}
		cands, err = c.PurgeCandidates(ctx, "acme", t0.Add(50*time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(cands) != 0 {
			t.Errorf("candidates after purge: %v", ids(cands))
		}
		p, err := c.Search(ctx, catalog.Filter{Account: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"held", "dead", "new"}, ids(p.Items)); diff != "" {
			t.Errorf("Search after purge (-want +got):\n%s", diff)
		}
		got, err := c.Get(ctx, "old2")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != catalog.StateDeleted || !cmp.Equal(got.Flags, []string{"purged"}) {
			t.Errorf("old2: state %s flags %v", got.State, got.Flags)
		}
		// Off hold, it can go.
		if err := c.Apply(ctx, catalog.SetHold("held", false), catalog.SetState("held", catalog.StateDeleted)); err != nil {
			t.Errorf("delete after hold lifted: %v", err)
		}
		if err := c.Apply(ctx, catalog.SetHold("nope", true)); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("hold missing = %v, want ErrNotFound", err)
		}
	})
}

func TestUploadQueue(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		put(t, c, rec("u1", 0), rec("u2", 1), rec("u3", 2))
		at := t0.Add(time.Hour)
		if err := c.Apply(ctx,
			catalog.EnqueueUpload("u1", "https://a/1", at),
			catalog.EnqueueUpload("u2", "https://a/2", at.Add(time.Second)),
			catalog.EnqueueUpload("u3", "https://a/3", at.Add(2*time.Second)),
		); err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, catalog.EnqueueUpload("missing", "x", at)); err == nil {
			t.Error("enqueue of a missing recording succeeded")
		}
		if oldest, ok, err := c.OldestPending(ctx); err != nil || !ok || !oldest.Equal(at) {
			t.Errorf("OldestPending = %v %v %v, want %v", oldest, ok, err, at)
		}
		due, err := c.DueUploads(ctx, at.Add(time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"u1", "u2"}, uploadIDs(due)); diff != "" {
			t.Errorf("DueUploads (-want +got):\n%s", diff)
		}
		// u1 fails and is retried later, then succeeds; u2 is dead at once.
		if err := c.Apply(ctx, catalog.UploadFailed("u1", "503", at.Add(time.Minute), false)); err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, catalog.UploadFailed("u2", "404 Not Found", time.Time{}, true)); err != nil {
			t.Fatal(err)
		}
		due, err = c.DueUploads(ctx, at.Add(time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 0 {
			t.Errorf("due after failures: %v", uploadIDs(due))
		}
		if n, err := c.CountDead(ctx); err != nil || n != 1 {
			t.Errorf("CountDead = %d %v, want 1", n, err)
		}
		if err := c.Apply(ctx, catalog.UploadDone("u1"), catalog.SetState("u1", catalog.StateUploaded)); err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(ctx, catalog.UploadDone("nope")); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("UploadDone(nope) = %v, want ErrNotFound", err)
		}
		all := map[catalog.UploadState][]catalog.Upload{}
		for _, s := range []catalog.UploadState{catalog.UploadStatePending, catalog.UploadStateDead, catalog.UploadStateDone} {
			us, next, err := c.Uploads(ctx, s, 0, "")
			if err != nil || next != "" {
				t.Fatalf("Uploads(%s): next %q, %v", s, next, err)
			}
			all[s] = us
		}
		ignore := cmpopts.IgnoreFields(catalog.Upload{}, "FirstAttemptAt", "UpdatedAt")
		want := map[catalog.UploadState][]catalog.Upload{
			catalog.UploadStatePending: {{RecordingID: "u3", Target: "https://a/3", State: "pending", NextAt: at.Add(2 * time.Second), EnqueuedAt: at.Add(2 * time.Second)}},
			catalog.UploadStateDead:    {{RecordingID: "u2", Target: "https://a/2", State: "dead", Attempts: 1, NextAt: at.Add(time.Second), LastError: "404 Not Found", EnqueuedAt: at.Add(time.Second)}},
			catalog.UploadStateDone:    {{RecordingID: "u1", Target: "https://a/1", State: "done", Attempts: 2, NextAt: at.Add(time.Minute), EnqueuedAt: at}},
		}
		if diff := cmp.Diff(want, all, ignore); diff != "" {
			t.Errorf("uploads (-want +got):\n%s", diff)
		}
		if all[catalog.UploadStateDead][0].FirstAttemptAt.IsZero() {
			t.Error("dead upload has no first attempt time")
		}
		// A dead letter retried is pending again, from scratch.
		if err := c.Apply(ctx, catalog.EnqueueUpload("u2", "https://a/2", at.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if n, err := c.CountDead(ctx); err != nil || n != 0 {
			t.Errorf("CountDead after retry = %d %v, want 0", n, err)
		}
		pend, next, err := c.Uploads(ctx, catalog.UploadStatePending, 1, "")
		if err != nil || len(pend) != 1 || pend[0].RecordingID != "u3" || next == "" {
			t.Fatalf("Uploads page 1 = %v %q %v", uploadIDs(pend), next, err)
		}
		pend, next, err = c.Uploads(ctx, catalog.UploadStatePending, 1, next)
		if err != nil || len(pend) != 1 || pend[0].RecordingID != "u2" || pend[0].Attempts != 0 || next != "" {
			t.Fatalf("Uploads page 2 = %+v %q %v", pend, next, err)
		}
		if err := c.Apply(ctx, catalog.UploadDone("u2"), catalog.UploadDone("u3")); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.OldestPending(ctx); err != nil || ok {
			t.Errorf("OldestPending with none pending = %v %v", ok, err)
		}
	})
}

func uploadIDs(us []catalog.Upload) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.RecordingID)
	}
	return out
}

func TestAudit(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		entries := []catalog.AuditEntry{
			{At: t0, Who: "ops", Action: "stop", Account: "acme", CallID: "c1", RecordingID: "r1", Result: "ok"},
			{At: t0.Add(time.Second), Who: "ops", Action: "hold", Account: "acme", RecordingID: "r2", Result: "ok"},
			{At: t0.Add(2 * time.Second), Who: "beta-admin", Action: "delete", Account: "beta", RecordingID: "r3", Result: "recording on hold"},
			{At: t0.Add(3 * time.Second), Who: "ops", Action: "mask", Account: "acme", CallID: "c1", Result: "ok"},
		}
		for _, e := range entries {
			if err := c.Apply(ctx, catalog.Audit(e)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Apply(ctx, catalog.Audit(catalog.AuditEntry{Action: "stop"})); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("audit without who = %v, want ErrInvalid", err)
		}
		ignoreSeq := cmpopts.IgnoreFields(catalog.AuditEntry{}, "Seq")
		for _, tc := range []struct {
			name string
			f    catalog.AuditFilter
			want []catalog.AuditEntry
		}{
			{"all", catalog.AuditFilter{}, entries},
			{"account", catalog.AuditFilter{Account: "acme"}, []catalog.AuditEntry{entries[0], entries[1], entries[3]}},
			{"call", catalog.AuditFilter{CallID: "c1"}, []catalog.AuditEntry{entries[0], entries[3]}},
			{"recording", catalog.AuditFilter{RecordingID: "r3"}, entries[2:3]},
			{"who and action", catalog.AuditFilter{Who: "ops", Action: "hold"}, entries[1:2]},
			{"range", catalog.AuditFilter{From: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, entries[1:3]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []catalog.AuditEntry
				cursor := ""
				for range 10 {
					page, next, err := c.ListAudit(ctx, tc.f, 2, cursor)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, page...)
					if cursor = next; cursor == "" {
						break
					}
				}
				if diff := cmp.Diff(tc.want, got, ignoreSeq); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestLeaseContention(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		// Two catalogs on one database stand for two runtimes.
		a, b := open(t, cfg), open(t, cfg)
		ctx := context.Background()
		held, who, expA, err := a.AcquireLease(ctx, "fs1", "rt-a", time.Hour)
		if err != nil || !held || who != "rt-a" {
			t.Fatalf("a acquires: %v %q %v", held, who, err)
		}
		held, who, exp, err := b.AcquireLease(ctx, "fs1", "rt-b", time.Hour)
		if err != nil || held || who != "rt-a" || !exp.Equal(expA) {
			t.Fatalf("b while a holds: held %v by %q until %v (a's until %v), %v", held, who, exp, expA, err)
		}
		// b holds another switch meanwhile.
		if held, _, _, err := b.AcquireLease(ctx, "fs2", "rt-b", time.Hour); err != nil || !held {
			t.Fatalf("b on fs2: %v %v", held, err)
		}
		// a renews.
		if held, _, exp, err := a.AcquireLease(ctx, "fs1", "rt-a", 2*time.Hour); err != nil || !held || !exp.After(expA) {
			t.Fatalf("a renews: %v until %v (was %v), %v", held, exp, expA, err)
		}
		// a's lease expires (a renewal with a tiny ttl stands for a dead
		// runtime's last heartbeat): b takes it.
		if held, _, _, err := a.AcquireLease(ctx, "fs1", "rt-a", time.Microsecond); err != nil || !held {
			t.Fatalf("a shortens: %v %v", held, err)
		}
		for {
			held, who, _, err = b.AcquireLease(ctx, "fs1", "rt-b", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if held {
				break
			}
			// Not yet expired by the database's clock, which has
			// microseconds: retry.
		}
		if who != "rt-b" {
			t.Errorf("holder %q, want rt-b", who)
		}
		if held, who, _, err := a.AcquireLease(ctx, "fs1", "rt-a", time.Hour); err != nil || held || who != "rt-b" {
			t.Fatalf("a after b took over: %v %q %v", held, who, err)
		}
		// Released, it is free at once; releasing another's lease does
		// nothing.
		if err := a.ReleaseLease(ctx, "fs1", "rt-a"); err != nil {
			t.Fatal(err)
		}
		if held, _, _, err := a.AcquireLease(ctx, "fs1", "rt-a", time.Hour); err != nil || held {
			t.Fatalf("a after its no-op release: %v %v", held, err)
		}
		if err := b.ReleaseLease(ctx, "fs1", "rt-b"); err != nil {
			t.Fatal(err)
		}
		if held, _, _, err := a.AcquireLease(ctx, "fs1", "rt-a", time.Hour); err != nil || !held {
			t.Fatalf("a after b released: %v %v", held, err)
		}
		// Racing for a free lease, exactly one of many wins.
		var wg sync.WaitGroup
		wins := make([]bool, 8)
		for i := range wins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := a
				if i%2 == 1 {
					c = b
				}
				held, _, _, err := c.AcquireLease(ctx, "fs3", fmt.Sprint("rt-", i), time.Hour)
				if err != nil {
					t.Error(err)
				}
				wins[i] = held
			}()
		}
		wg.Wait()
		n := 0
		for _, w := range wins {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d winners of a free lease, want 1: %v", n, wins)
		}
	})
}

// openHolding opens a catalog holding one recording, "held", on legal
// hold.
func openHolding(t *testing.T, cfg catalog.Config) (*catalog.Catalog, context.Context) {
	t.Helper()
	c := open(t, cfg)
	ctx := context.Background()
	put(t, c, rec("held", 0))
	if err := c.Apply(ctx, catalog.SetHold("held", true)); err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

func TestGroupCommitIsolation(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c, ctx := openHolding(t, cfg)
		before := c.Stats()
		// Four callers in one transaction; the second and third fail, each
		// alone, after writing a row that must then not exist.
		errs := c.CommitGroup(ctx,
			[]catalog.Op{catalog.PutRecording(rec("g1", 1))},
			[]catalog.Op{catalog.PutRecording(rec("bad1", 2)), catalog.SetState("held", catalog.StateDeleted)},
			[]catalog.Op{catalog.PutRecording(rec("bad2", 3)), catalog.EnqueueUpload("missing", "x", t0)},
			[]catalog.Op{catalog.PutRecording(rec("g2", 4)), catalog.EnqueueUpload("g2", "x", t0)},
		)
		if errs[0] != nil || errs[3] != nil {
			t.Errorf("good callers failed: %v, %v", errs[0], errs[3])
		}
		if !errors.Is(errs[1], catalog.ErrHeld) {
			t.Errorf("caller 2: %v, want ErrHeld", errs[1])
		}
		if errs[2] == nil {
			t.Error("caller 3 (upload of a missing recording) succeeded")
		}
		if got := c.Stats(); got.Commits-before.Commits != 1 || got.Applies-before.Applies != 4 {
			t.Errorf("stats %+v after %+v: want 1 commit of 4 applies", got, before)
		}
		p, err := c.Search(ctx, catalog.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"held", "g1", "g2"}, ids(p.Items)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		// A group of one that fails leaves nothing either.
		errs = c.CommitGroup(ctx, []catalog.Op{catalog.PutRecording(rec("bad3", 5)), catalog.SetHold("nope", true)})
		if !errors.Is(errs[0], catalog.ErrNotFound) {
			t.Errorf("lone caller: %v, want ErrNotFound", errs[0])
		}
		if _, err := c.Get(ctx, "bad3"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("bad3 after its caller failed: %v", err)
		}
		// A caller whose context ended before its turn is not applied.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		errs = c.CommitGroup(cctx, []catalog.Op{catalog.PutRecording(rec("late", 6))})
		if !errors.Is(errs[0], context.Canceled) {
			t.Errorf("cancelled caller: %v", errs[0])
		}
		if _, err := c.Get(ctx, "late"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("late: %v", err)
		}
	})
}

// TestApplyEach: the lists of one ApplyEach call are committed in one
// transaction, each failing alone, and the call is answered once for all
// of them; an empty list writes nothing, a cancelled call nothing at all.
func TestApplyEach(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c, ctx := openHolding(t, cfg)
		lists := [][]catalog.Op{{catalog.SetHold("nope", true)}, nil}
		want := []string{"held"}
		for i := range 62 {
			id := fmt.Sprintf("e%02d", i)
			lists = append(lists, []catalog.Op{catalog.PutRecording(rec(id, i)), catalog.EnqueueUpload(id, "t", t0)})
			want = append(want, id)
		}
		lists = append(lists, []catalog.Op{catalog.PutRecording(rec("bad", 1)), catalog.SetState("held", catalog.StateDeleted)})
		before := c.Stats()
		errs := c.ApplyEach(ctx, lists...)
		got := c.Stats()
		if n, a := got.Commits-before.Commits, got.Applies-before.Applies; n != 1 || a != int64(len(lists)-1) {
			t.Errorf("%d commits of %d applies, want 1 of %d (the empty list is no apply)", n, a, len(lists)-1)
		}
		if len(errs) != len(lists) {
			t.Fatalf("%d errors for %d lists", len(errs), len(lists))
		}
		if !errors.Is(errs[0], catalog.ErrNotFound) {
			t.Errorf("list 0: %v, want ErrNotFound", errs[0])
		}
		if !errors.Is(errs[len(errs)-1], catalog.ErrHeld) {
			t.Errorf("last list: %v, want ErrHeld", errs[len(errs)-1])
		}
		for i, err := range errs[1 : len(errs)-1] {
			if err != nil {
				t.Errorf("list %d: %v", i+1, err)
			}
		}
		p, err := c.Search(ctx, catalog.Filter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, ids(p.Items), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		errs = c.ApplyEach(cctx, []catalog.Op{catalog.PutRecording(rec("late", 70))}, []catalog.Op{catalog.PutRecording(rec("late2", 71))})
		for i, err := range errs {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled list %d: %v", i, err)
			}
		}
		if _, err := c.Get(ctx, "late"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("late: %v", err)
		}
	})
}

func TestConcurrentApply(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		const n = 64
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("c%02d", i)
				ops := []catalog.Op{catalog.PutRecording(rec(id, i)), catalog.EnqueueUpload(id, "t", t0)}
				if i%8 == 7 {
					ops = append(ops, catalog.SetHold("nope", true)) // fails this caller alone
				}
				errs[i] = c.Apply(ctx, ops...)
			}()
		}
		wg.Wait()
		var want []string
		for i, err := range errs {
			if i%8 == 7 {
				if !errors.Is(err, catalog.ErrNotFound) {
					t.Errorf("caller %d: %v, want ErrNotFound", i, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			want = append(want, fmt.Sprintf("c%02d", i))
		}
		p, err := c.Search(ctx, catalog.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, ids(p.Items)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		pend, _, err := c.Uploads(ctx, catalog.UploadStatePending, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(pend) != len(want) {
			t.Errorf("%d pending uploads, want %d", len(pend), len(want))
		}
		st := c.Stats()
		t.Logf("%d applies in %d commits", st.Applies, st.Commits)
	})
}

// TestCommitDelay: after a commit that carried several requests the
// writer waits for more before it commits again, up to a full group; a
// lone caller applying one request after another never waits; Close
// commits what a waiting writer holds. The delay is an hour: a wait that
// should not happen hangs the test.
func TestCommitDelay(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		c.SetCommitDelay(time.Hour)
		waiting := make(chan int, 1)
		c.OnDelay(func(n int) { waiting <- n })

		before := c.Stats()
		for i := range 20 {
			put(t, c, rec(fmt.Sprintf("lone%02d", i), i))
		}
		if got := c.Stats().Commits - before.Commits; got != 20 {
			t.Errorf("a lone caller's 20 applies took %d commits, want 20", got)
		}

		for i, err := range c.ApplyEach(ctx, []catalog.Op{catalog.PutRecording(rec("pair0", 40))}, []catalog.Op{catalog.PutRecording(rec("pair1", 41))}) {
			if err != nil {
				t.Fatalf("pair %d: %v", i, err)
			}
		}
		before = c.Stats()
		done := make(chan error, 1)
		go func() { done <- c.Apply(ctx, catalog.PutRecording(rec("waits", 50))) }()
		if n := <-waiting; n != 1 {
			t.Errorf("the writer waits holding %d requests, want 1", n)
		}
		lists := make([][]catalog.Op, catalog.MaxGroup-1)
		want := []string{"waits"}
		for i := range lists {
			id := fmt.Sprintf("fill%03d", i)
			lists[i] = []catalog.Op{catalog.PutRecording(rec(id, 60+i))}
			want = append(want, id)
		}
		for i, err := range c.ApplyEach(ctx, lists...) {
			if err != nil {
				t.Fatalf("fill %d: %v", i, err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := c.Stats().Commits - before.Commits; got != 1 {
			t.Errorf("the waiting request and a full group took %d commits, want 1", got)
		}
		for _, id := range want {
			if _, err := c.Get(ctx, id); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}

		go func() { done <- c.Apply(ctx, catalog.PutRecording(rec("atclose", 70))) }()
		<-waiting
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("the request held at Close: %v", err)
		}
		if _, err := open(t, cfg).Get(ctx, "atclose"); err != nil {
			t.Errorf("the request held at Close is not in the catalog: %v", err)
		}
	})
}

func TestReopen(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		ctx := context.Background()
		// Two opens at once on a fresh database both migrate it safely.
		var wg sync.WaitGroup
		cs := make([]*catalog.Catalog, 2)
		for i := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := catalog.Open(ctx, cfg)
				if err != nil {
					t.Error(err)
					return
				}
				cs[i] = c
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		put(t, cs[0], rec("kept", 0))
		for _, c := range cs {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cs[0].Apply(ctx, catalog.PutRecording(rec("after", 0))); !errors.Is(err, catalog.ErrClosed) {
			t.Errorf("Apply after Close = %v, want ErrClosed", err)
		}
		c := open(t, cfg)
		got, err := c.Get(ctx, "kept")
		if err != nil || got.ID != "kept" {
			t.Fatalf("after reopen: %v %v", got.ID, err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	for _, cfg := range []catalog.Config{
		{Driver: "mysql", DSN: "x"},
		{Driver: "sqlite"},
		{Driver: "sqlite", DSN: "a?b"},
	} {
		if c, err := catalog.Open(context.Background(), cfg); !errors.Is(err, catalog.ErrInvalid) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Open(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}

// TestAddRecording: a recording entered as active at its start never
// overwrites the row its finish wrote, whichever commits first; a
// discarded one is listed only when asked for.
func TestAddRecording(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		active := func(id string) catalog.Recording {
			return rec(id, 1, func(r *catalog.Recording) { r.State = catalog.StateActive })
		}
		// The finish first, the late start's row after it.
		put(t, c, rec("r1", 1))
		if err := c.Apply(ctx, catalog.AddRecording(active("r1")), catalog.AddRecording(active("r2"))); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]catalog.State{"r1": catalog.StateStored, "r2": catalog.StateActive} {
			if got, err := c.Get(ctx, id); err != nil || got.State != want {
				t.Errorf("%s: %v %v, want %s", id, got.State, err, want)
			}
		}
		if err := c.Apply(ctx, catalog.SetState("r2", catalog.StateDiscarded)); err != nil {
			t.Fatal(err)
		}
		p, err := c.Search(ctx, catalog.Filter{})
		if err != nil || !slices.Equal(ids(p.Items), []string{"r1"}) {
			t.Errorf("default search %v %v, want r1 only", ids(p.Items), err)
		}
		p, err = c.Search(ctx, catalog.Filter{State: catalog.StateDiscarded})
		if err != nil || !slices.Equal(ids(p.Items), []string{"r2"}) {
			t.Errorf("discarded %v %v", ids(p.Items), err)
		}
	})
}

// TestSetState: a state without flags is set with one statement, with or
// without the flags a state brings; the row's flags and hold stay; a
// missing recording is ErrNotFound either way.
func TestSetState(t *testing.T) {
	forDrivers(t, func(t *testing.T, cfg catalog.Config) {
		c := open(t, cfg)
		ctx := context.Background()
		put(t, c, rec("r1", 0, func(r *catalog.Recording) { r.Flags = []string{"b"} }))
		if err := c.Apply(ctx, catalog.SetHold("r1", true)); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			id        string
			state     catalog.State
			flags     []string
			wantErr   error
			wantFlags []string
		}{
			{"state only", "r1", catalog.StateUploaded, nil, nil, []string{"b"}},
			{"with flags", "r1", catalog.StateDead, []string{"a"}, nil, []string{"a", "b"}},
			{"state only, missing", "nope", catalog.StateUploaded, nil, catalog.ErrNotFound, nil},
			{"with flags, missing", "nope", catalog.StateDead, []string{"a"}, catalog.ErrNotFound, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := c.Apply(ctx, catalog.SetState(tc.id, tc.state, tc.flags...))
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SetState = %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr != nil {
					return
				}
				got, err := c.Get(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != tc.state || !got.Hold {
					t.Errorf("state %s hold %v, want %s and the hold kept", got.State, got.Hold, tc.state)
				}
				if diff := cmp.Diff(tc.wantFlags, got.Flags); diff != "" {
					t.Errorf("flags (-want +got):\n%s", diff)
				}
			})
		}
	})
}
