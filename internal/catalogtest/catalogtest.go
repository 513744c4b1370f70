// Package catalogtest gives tests a catalog to open: a SQLite file, or a
// fresh database on a throwaway PostgreSQL cluster started for the test
// binary.
//
// A package whose tests use Postgres calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { catalogtest.Main(m) }
//
// The first call to Postgres runs initdb into a temporary directory and
// starts the server on a Unix socket in that directory (no TCP port), as the
// user "postgres" (or "nobody") when the tests run as root, since
// PostgreSQL refuses to run as root. Every call creates a database of its
// own on that one cluster; Main stops the cluster and removes its directory
// after the tests. The server also gets SIGINT if the test binary dies.
//
// The PostgreSQL binaries are looked for in $RECPOL_PG_BIN, on PATH, then
// in /usr/lib/postgresql/<version>/bin (Debian's layout), newest first.
// When no server can be started the test is skipped with the reason, unless
// RECPOL_REQUIRE_POSTGRES=1 (as in CI), where it fails.
package catalogtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
)

// RequireEnv is the environment variable that turns a missing PostgreSQL
// from a skip into a failure when set to 1.
const RequireEnv = "RECPOL_REQUIRE_POSTGRES"

var (
	mainCalled atomic.Bool
	startOnce  sync.Once
	srv        *server
	srvErr     error
	dbSeq      atomic.Int64
)

// Main runs the tests and then stops the PostgreSQL cluster, if one was
// started, and exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "catalogtest: stop postgres: %v\n", err)
		}
	}
	os.Exit(code)
}

// SQLite returns the configuration of a catalog in a new file in
// t.TempDir().
func SQLite(t testing.TB) catalog.Config {
	return catalog.Config{Driver: catalog.DriverSQLite, DSN: filepath.Join(t.TempDir(), "catalog.db")}
}

// Postgres returns the configuration of a new, empty database on the test
// binary's PostgreSQL cluster, starting the cluster on first use. It skips
// the test when PostgreSQL cannot be started, or fails it when
// RECPOL_REQUIRE_POSTGRES=1.
func Postgres(t testing.TB) catalog.Config {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("catalogtest.Postgres: the package's TestMain must call catalogtest.Main(m), which stops the cluster")
	}
	startOnce.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("PostgreSQL is required (%s=1) but could not be started: %v", RequireEnv, srvErr)
		}
		t.Skipf("PostgreSQL not available, test skipped (set %s=1 to fail instead): %v", RequireEnv, srvErr)
	}
	name := fmt.Sprintf("t_%d", dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("catalogtest: create database %s: %v", name, err)
	}
	return catalog.Config{Driver: catalog.DriverPostgres, DSN: srv.dsn(name)}
}

// server is a running throwaway cluster.
type server struct {
	dir    string // temporary directory: data/, the socket, the log
	cmd    *exec.Cmd
	exited chan struct{}
	admin  *sql.DB
}

const superuser = "recpol"

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable", s.dir, superuser, db)
}

// findBin returns the directory holding initdb and postgres.
func findBin() (string, error) {
	var tried []string
	ok := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("RECPOL_PG_BIN"); d != "" {
		if ok(d) {
			return d, nil
		}
		tried = append(tried, "$RECPOL_PG_BIN="+d)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); ok(d) {
			return d, nil
		}
	}
	tried = append(tried, "PATH")
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if ok(d) {
			return d, nil
		}
	}
	tried = append(tried, "/usr/lib/postgresql/*/bin")
	return "", fmt.Errorf("initdb and postgres not found (looked in %s); install the postgresql package", strings.Join(tried, ", "))
}

// runAs returns the credentials to run PostgreSQL with: none when not
// root, else the user postgres or nobody.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
}

// reachable reports whether every directory from / to dir lets other users
// through, so that the unprivileged server can reach a directory made in it.
func reachable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		up := filepath.Dir(dir)
		if up == dir {
			return true
		}
		dir = up
	}
}

func start() (_ *server, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	parent := os.TempDir()
	if cred != nil && !reachable(parent) {
		parent = "/tmp" // $TMPDIR is closed to other users
	}
	dir, err := os.MkdirTemp(parent, "recpol-pg-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", initdb, err, out)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if cred != nil {
		if err := logf.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", "5432",
		"-c", "listen_addresses=", "-c", "max_connections=300", "-c", "log_min_messages=warning")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// The server is stopped by Main; should the test binary die first,
	// the kernel sends it SIGINT (a fast shutdown). The parent-death
	// signal belongs to the thread that started the child, so that thread
	// is kept for the life of the process.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT}
	started := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		started <- s.cmd.Start()
		select {} // keep the thread
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	s.admin, err = sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = s.admin.PingContext(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres not ready after 60s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond) // polling an external process
	}
}

// stop shuts the server down (fast shutdown: clients are disconnected) and
// removes its directory.
func (s *server) stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	var err error
	if s.cmd != nil && s.cmd.Process != nil && s.exited != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("postgres did not stop within 30s; killed")
		}
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}
