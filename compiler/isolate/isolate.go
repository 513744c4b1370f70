// Package isolate compiles policies in a child process, within a budget
// of time and memory, so that a policy that evaluates for ever or without
// bound (a list.Range of fifty million elements, a comprehension over a
// comprehension) costs one failed compile, never the process that asked:
// the child is killed and the next compile starts a new one.
//
// The child is the program itself, started again with RECPOL_COMPILE_WORKER
// set: a program that uses a Compiler calls Main first thing in main (and a
// test binary in TestMain). The child keeps a compiler.Compiler between
// compiles, so an incremental reload stays incremental, and answers each
// request with the result encoded by compiler.MarshalResult. A child that
// does not greet the parent within a few seconds (a program that forgot to
// call Main) is killed.
//
// Time is wall time per compile. Memory is the child's resident set,
// read from /proc every few milliseconds (Linux; elsewhere only time is
// bounded); the child also sets its Go memory limit to the budget so that
// its collector works hard before the budget is reached.
package isolate

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/recpol/recpol/compiler"
)

// Defaults of a Budget's zero fields.
const (
	DefaultTime   = 2 * time.Minute
	DefaultMemory = 2 << 30
)

// Budget bounds one compile.
type Budget struct {
	// Time is the wall time one compile may take; 0 means DefaultTime.
	Time time.Duration
	// Memory is the resident memory the child may use, in bytes; 0
	// means DefaultMemory.
	Memory uint64
}

func (b Budget) orDefault() Budget {
	if b.Time <= 0 {
		b.Time = DefaultTime
	}
	if b.Memory == 0 {
		b.Memory = DefaultMemory
	}
	return b
}

// ErrOverBudget is wrapped by the error of a compile that was stopped for
// taking more time or memory than its budget.
var ErrOverBudget = errors.New("compile over budget")

// ErrWorker is wrapped by the error of a compile whose child failed: it
// could not start, crashed, or answered nonsense.
var ErrWorker = errors.New("compile worker failed")

const (
	envWorker  = "RECPOL_COMPILE_WORKER"
	envOptions = "RECPOL_COMPILE_OPTIONS"
	envMemory  = "RECPOL_COMPILE_MEMORY"
	greeting   = "recpol compile worker 1\n"
	// maxFrame bounds what one side reads from the other.
	maxFrame = 1 << 30
	// greetWithin is how long a new child has to greet.
	greetWithin = 10 * time.Second
	// pollEvery is how often the child's resident memory is read.
	pollEvery = 5 * time.Millisecond
)

// Main serves as a compile worker and exits when the process was started
// as one by a Compiler; otherwise it returns at once.
func Main() {
	if os.Getenv(envWorker) != "1" {
		return
	}
	if err := serve(os.Stdin, os.Stdout); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "recpol compile worker:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// request is what the parent asks of the child.
type request struct {
	Dir string `json:"dir"`
	// Hinted: Changed are the only files that may have changed since the
	// child's last compile (compiler.Compiler.CompileChanged).
	Hinted  bool     `json:"hinted,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

// Answers of the child: a status byte, then an encoded result or an error.
const (
	answerResult byte = iota
	answerError
)

// serve is the child's loop: one request in, one answer out, until EOF.
func serve(in io.Reader, out io.Writer) error {
	var o compiler.Options
	if s := os.Getenv(envOptions); s != "" {
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			return fmt.Errorf("options: %w", err)
		}
	}
	if m, err := strconv.ParseInt(os.Getenv(envMemory), 10, 64); err == nil && m > 0 {
		debug.SetMemoryLimit(m)
	}
	cm := compiler.NewCompiler(o)
	cm.DeferManifest()       // written after the answer
	var enc compiler.Encoder // the parent decodes every answer, in order
	bw := bufio.NewWriter(out)
	if _, err := bw.WriteString(greeting); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	br := bufio.NewReader(in)
	for {
		b, err := readFrame(br)
		if err != nil {
			return err
		}
		var req request
		if err := json.Unmarshal(b, &req); err != nil {
			return fmt.Errorf("request: %w", err)
		}
		var ans []byte
		var res *compiler.Result
		if req.Hinted {
			res, err = cm.CompileChanged(req.Dir, req.Changed)
		} else {
			res, err = cm.Compile(req.Dir)
		}
		if err == nil {
			var b []byte
			if b, err = enc.Encode(res); err == nil {
				ans = append([]byte{answerResult}, b...)
			}
		}
		if err != nil {
			ans = append([]byte{answerError}, err.Error()...)
		}
		if err := writeFrame(bw, ans); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		// Answered: now the manifest, and after a warm start the
		// memory the next reload needs, while the parent has the table.
		cm.WriteManifest()
		cm.Prime(req.Dir)
		// Then a collection, while nothing waits: a reload allocates
		// megabytes (the table, the manifest), and a cycle the pacer
		// started in the middle of the next reload (every other one,
		// on a thousand accounts) was most of the slow reloads' time.
		// It runs beside this loop: a request that comes during it is
		// compiled at once, beside the rest of the cycle, instead of
		// waiting for its end.
		go runtime.GC()
	}
}

func writeFrame(w io.Writer, b []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxFrame {
		return nil, fmt.Errorf("a frame of %d bytes (at most %d)", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading a frame: %w", io.ErrUnexpectedEOF)
	}
	return b, nil
}

// Compiler compiles policy directories in a child process within a
// budget. One compile runs at a time; Compile is safe for concurrent use.
type Compiler struct {
	opts   compiler.Options
	budget Budget
	mu     sync.Mutex
	w      *worker // nil until the first compile, and after a kill
	// dec decodes the children's answers, reusing the accounts of the
	// last one that did not change (whichever child sent it).
	dec compiler.Decoder
}

// New returns a Compiler with the compiler's options and a budget. No
// child starts until the first Compile.
func New(opts compiler.Options, b Budget) *Compiler {
	return &Compiler{opts: opts, budget: b.orDefault()}
}

// Budget returns the compiler's budget, with defaults filled in.
func (c *Compiler) Budget() Budget { return c.budget }

// Compile compiles the policy in dir like compiler.Options.Compile. A
// compile over budget is stopped and returns an error wrapping
// ErrOverBudget that says which bound; a cancelled ctx stops it too and
// returns ctx's error. Either way the child is killed and the next compile
// starts a new one. The result has no setting positions.
func (c *Compiler) Compile(ctx context.Context, dir string) (*compiler.Result, error) {
	return c.compile(ctx, request{Dir: dir})
}

// CompileChanged is Compile told which files of dir may have changed
// since the last compile, as compiler.Compiler.CompileChanged; a new
// child (the first compile, or one after a kill) looks at every file.
func (c *Compiler) CompileChanged(ctx context.Context, dir string, changed []string) (*compiler.Result, error) {
	return c.compile(ctx, request{Dir: dir, Hinted: true, Changed: changed})
}

func (c *Compiler) compile(ctx context.Context, req request) (*compiler.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil && c.w.dead() {
		c.w = nil // it died between compiles (the OOM killer, an operator)
	}
	if c.w == nil {
		w, err := c.start()
		if err != nil {
			return nil, err
		}
		c.w = w
	}
	res, err := c.w.compile(ctx, req, c.budget)
	if err != nil && c.w.dead() {
		c.w = nil
	}
	return res, err
}

// Close stops the child, if one runs.
func (c *Compiler) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		c.w.close(closeGrace)
		c.w = nil
	}
	return nil
}

// closeGrace is how long Close lets a child end on its own: it writes
// the manifest of its last compile after answering it (see
// compiler.Compiler.DeferManifest), and a kill before that would leave
// LastGood one table behind.
const closeGrace = 2 * time.Second

// worker is one child process.
type worker struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *tail
	exited chan struct{} // closed when the child has been waited for
	err    error         // Wait's error, once exited
	dec    *compiler.Decoder
}

// self is the program to start as a child: the running executable itself,
// even when its file was replaced or removed since (a package upgrade).
func self() (string, error) {
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/proc/self/exe"); err == nil {
			return "/proc/self/exe", nil
		}
	}
	return os.Executable()
}

func (c *Compiler) start() (*worker, error) {
	exe, err := self()
	if err != nil {
		return nil, fmt.Errorf("%w: finding the program to start: %v", ErrWorker, err)
	}
	opts, err := json.Marshal(c.opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWorker, err)
	}
	cmd := exec.Command(exe)
	// The child's argv[0] is the parent's: a program that dispatches on
	// its name (a busybox-style binary, testscript) dispatches the same.
	cmd.Args = []string{os.Args[0]}
	setParentDeath(cmd)
	cmd.Env = append(os.Environ(), envWorker+"=1", envOptions+"="+string(opts),
		envMemory+"="+strconv.FormatUint(c.budget.Memory, 10))
	w := &worker{cmd: cmd, stderr: &tail{max: 4096}, exited: make(chan struct{}), dec: &c.dec}
	cmd.Stderr = w.stderr
	if w.in, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWorker, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWorker, err)
	}
	w.out = bufio.NewReaderSize(stdout, 64<<10)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: starting %s: %v", ErrWorker, exe, err)
	}
	go func() {
		w.err = cmd.Wait()
		close(w.exited)
	}()
	hello := make(chan error, 1)
	go func() {
		b := make([]byte, len(greeting))
		_, err := io.ReadFull(w.out, b)
		if err == nil && string(b) != greeting {
			err = errors.New("it did not greet as a compile worker")
		}
		hello <- err
	}()
	t := time.NewTimer(greetWithin)
	defer t.Stop()
	select {
	case err = <-hello:
	case <-t.C:
		err = fmt.Errorf("no greeting within %s (does the program call isolate.Main first?)", greetWithin)
	}
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("%w: %v%s", ErrWorker, err, w.stderr.suffix())
	}
	return w, nil
}

// answer is what the reader goroutine got from the child.
type answer struct {
	b   []byte
	err error
}

func (w *worker) compile(ctx context.Context, r request, b Budget) (*compiler.Result, error) {
	req, _ := json.Marshal(r)
	got := make(chan answer, 1)
	go func() {
		if err := writeFrame(w.in, req); err != nil {
			got <- answer{err: err}
			return
		}
		a, err := readFrame(w.out)
		got <- answer{a, err}
	}()
	deadline := time.NewTimer(b.Time)
	defer deadline.Stop()
	// poll stays nil (memory unbounded) where /proc is not there.
	var poll <-chan time.Time
	var rss func() uint64
	if statm, err := os.Open(fmt.Sprintf("/proc/%d/statm", w.cmd.Process.Pid)); err == nil {
		defer statm.Close()
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		poll = tick.C
		pageSize := uint64(os.Getpagesize())
		buf := make([]byte, 128)
		rss = func() uint64 {
			n, err := statm.ReadAt(buf, 0)
			if err != nil && n == 0 {
				return 0
			}
			f := strings.Fields(string(buf[:n]))
			if len(f) < 2 {
				return 0
			}
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			return pages * pageSize
		}
	}
	for {
		select {
		case a := <-got:
			return w.decode(a)
		case <-ctx.Done():
			w.stop()
			return nil, ctx.Err()
		case <-deadline.C:
			w.stop()
			return nil, fmt.Errorf("%w: still evaluating after %s", ErrOverBudget, b.Time)
		case <-poll:
			if m := rss(); m > b.Memory {
				w.stop()
				return nil, fmt.Errorf("%w: the evaluation used %s of memory, more than its %s", ErrOverBudget, bytesString(m), bytesString(b.Memory))
			}
		}
	}
}

func (w *worker) decode(a answer) (*compiler.Result, error) {
	if a.err != nil {
		w.stop()
		return nil, fmt.Errorf("%w: %v%s", ErrWorker, a.err, w.stderr.suffix())
	}
	if len(a.b) == 0 {
		w.stop()
		return nil, fmt.Errorf("%w: an empty answer", ErrWorker)
	}
	switch a.b[0] {
	case answerError:
		return nil, errors.New(string(a.b[1:]))
	case answerResult:
		res, err := w.dec.Decode(a.b[1:])
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("%w: %v", ErrWorker, err)
		}
		return res, nil
	}
	w.stop()
	return nil, fmt.Errorf("%w: an answer of kind %d", ErrWorker, a.b[0])
}

// stop kills the child and waits for it.
// close ends the child's input and waits up to grace for it to exit
// (it finishes what it does between requests, then reads the end), then
// kills it.
func (w *worker) close(grace time.Duration) {
	_ = w.in.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.exited:
		return
	case <-t.C:
	}
	_ = w.cmd.Process.Kill()
	<-w.exited
}

func (w *worker) stop() {
	_ = w.in.Close()
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// dead reports whether the child has exited.
func (w *worker) dead() bool {
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

// tail keeps the last max bytes written to it: the end of the child's
// standard error, for the error of a crash.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// suffix is ": <the last line of standard error>" or "".
func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && !strings.HasPrefix(s, "fatal error") && !strings.HasPrefix(s, "panic") {
		s = s[i+1:]
	} else if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] // the first line of a crash says what it was
	}
	return ": " + s
}

func bytesString(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
