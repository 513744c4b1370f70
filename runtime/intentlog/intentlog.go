// Package intentlog is a durable append-only log of keyed records: the
// latest value put under a key is the key's record until the key is done
// with. The runtime keeps its recording intents in one (write-ahead: what
// it is about to ask the switch), but the log knows nothing of them: a
// value is any JSON value, and the caller says how a key is read from it.
//
// # Format
//
// The log is one file of lines, each one record:
//
//	{"put":<value>}     the value of the key Options.Key reads from it
//	{"done":"<key>"}    the key is done with
//
// # Durability rules
//
//   - A record is appended with one write on a file opened for appending;
//     it is in the log once Put or Done returned without an error.
//   - The log is not fsynced: it survives the crash of its process, which
//     is what it guards against, not the machine's. A caller that needs
//     more syncs elsewhere (the runtime's store fsyncs its journal).
//   - An unfinished last line (a write the process did not complete) is
//     dropped when the log is opened: its Put or Done never returned.
//   - A write that fails part-way is cut off, so that the next record does
//     not run into it; if even that fails, the next write rewrites the log
//     first.
//   - A line that cannot be read (not JSON, an unknown field, a key
//     Options.ValidKey refuses, more than MaxRecord bytes) is handed to
//     Options.Corrupt and left out; it never keeps the log from opening.
//   - The log is rewritten with the live records only when it is opened
//     and whenever it holds more than twice the records it needs (plus a
//     slack): into a temporary file renamed over it, so that a crash
//     leaves the old log or the new one, never a mix. A rewrite that fails
//     (a full disk) leaves the log as it is, appended to and read as
//     before.
//   - The log must be a regular file: a link or a directory in its place
//     is refused (ErrNotRegular), never followed. Files are created 0600.
//
// A Log is safe for concurrent use; its lock is taken last (it calls
// nothing of its caller's while holding it).
package intentlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// MaxRecord bounds one record of the log, in bytes.
const MaxRecord = 1 << 20

// compactSlack is how many records beyond twice the live ones the log may
// hold before it is rewritten.
const compactSlack = 4096

// ErrNotRegular: something other than a regular file is in the log's
// place.
var ErrNotRegular = errors.New("not a regular file")

// ErrClosed is returned by writes to a closed log.
var ErrClosed = errors.New("the intent log is closed")

// Options say how a log's records are keyed.
type Options struct {
	// Key reads the key of a put record from its value; an error makes
	// the record corrupt. Required.
	Key func(value []byte) (string, error)
	// ValidKey reports whether a key may be in the log (a done record's
	// and the one Key reads alike). Nil accepts any non-empty key.
	ValidKey func(key string) bool
	// Corrupt, when set, is handed each line of the log that cannot be
	// read when it is opened (a copy) and why.
	Corrupt func(line []byte, err error)
	// Logger says when a rewrite fails (the log goes on as it is); nil
	// discards.
	Logger *slog.Logger
}

// record is one line of the log.
type record struct {
	Put  json.RawMessage `json:"put,omitempty"`
	Done string          `json:"done,omitempty"`
}

// file is the open log (an *os.File).
type file interface {
	io.Writer
	Truncate(size int64) error
	Close() error
}

// Log is an open intent log.
type Log struct {
	path string
	opts Options

	mu      sync.Mutex
	f       file              // open for appending; nil after a failed write that could not be cut off
	closed  bool              // Close was called: nothing is written again
	live    map[string][]byte // by key: the value of each key not done with
	records int               // records in the file
	size    int64             // bytes in the file
}

// Open opens the log at path, creating it when missing: it reads the live
// records (handing the corrupt lines to opts.Corrupt) and rewrites the log
// with them. A log that is not a regular file is an error wrapping
// ErrNotRegular.
func Open(path string, opts Options) (*Log, error) {
	if opts.Key == nil {
		return nil, errors.New("intentlog: no Key")
	}
	live, bad, err := Read(path, opts)
	if err != nil {
		return nil, err
	}
	if opts.Corrupt != nil {
		for _, b := range bad {
			opts.Corrupt(b.Line, b.Err)
		}
	}
	l := &Log{path: path, opts: opts, live: live}
	if err := l.rewrite(); err != nil {
		// A full disk must not keep the caller from going on: the log
		// stays as it is, appended to, and is rewritten later.
		l.logger().Error("rewriting the intent log failed; appending to it as it is", "log", path, "error", err)
		f, size, oerr := openForAppend(path)
		if oerr != nil {
			return nil, fmt.Errorf("opening the intent log: %w", oerr)
		}
		// Counted as compactSlack records, so that a rewrite is tried
		// again once twice the live records have been appended.
		l.f, l.size, l.records = f, size, compactSlack
	}
	return l, nil
}

func (l *Log) logger() *slog.Logger {
	if l.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.opts.Logger
}

// Bad is a line of a log that could not be read.
type Bad struct {
	Line []byte
	Err  error
}

// Read reads the log at path without writing it: the live records by key,
// and the lines that cannot be read. A missing log is empty; one that is
// not a regular file is an error wrapping ErrNotRegular. An unfinished
// last line is neither live nor bad.
func Read(path string, opts Options) (map[string][]byte, []Bad, error) {
	live := map[string][]byte{}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return live, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var bad []Bad
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // the last write did not complete
		}
		line := data[:i]
		data = data[i+1:]
		if len(line) == 0 {
			continue
		}
		key, put, err := parse(line, opts)
		if err != nil {
			bad = append(bad, Bad{bytes.Clone(line), err})
			continue
		}
		if put == nil {
			delete(live, key)
		} else {
			live[key] = put
		}
	}
	return live, bad, nil
}

// parse reads one line of the log: its key and value (nil: done with).
func parse(line []byte, opts Options) (string, []byte, error) {
	if len(line) > MaxRecord {
		return "", nil, fmt.Errorf("%d bytes: too large", len(line))
	}
	var rec record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return "", nil, fmt.Errorf("corrupt: %w", err)
	}
	switch {
	case rec.Done != "" && rec.Put == nil:
		if !opts.validKey(rec.Done) {
			return "", nil, fmt.Errorf("invalid key %q", rec.Done)
		}
		return rec.Done, nil, nil
	case rec.Done == "" && rec.Put != nil:
		key, err := opts.Key(rec.Put)
		if err != nil {
			return "", nil, fmt.Errorf("corrupt: %w", err)
		}
		if !opts.validKey(key) {
			return "", nil, fmt.Errorf("invalid key %q", key)
		}
		return key, []byte(rec.Put), nil
	}
	return "", nil, errors.New("neither a value put nor a key done with")
}

func (o Options) validKey(k string) bool {
	if o.ValidKey == nil {
		return k != ""
	}
	return o.ValidKey(k)
}

// Put appends value as key's record. value must be a JSON value from
// which Options.Key reads key (json.Marshal's output, say). Put checks
// only what could harm other records, as it runs on its caller's hot
// path: a value with a newline or over MaxRecord, or an invalid key, is
// refused; a value that is not JSON is handed to Options.Corrupt at the
// next Open, alone, and one Key reads another key from is filed under that
// key then.
func (l *Log) Put(key string, value []byte) error {
	if len(value) > MaxRecord || bytes.IndexByte(value, '\n') >= 0 {
		return fmt.Errorf("intent log: the value of %q is not one line of at most %d bytes", key, MaxRecord)
	}
	if !l.opts.validKey(key) {
		return fmt.Errorf("intent log: invalid key %q", key)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.appendLocked(putLine(value)); err != nil {
		return err
	}
	l.live[key] = value
	l.compactLocked()
	return nil
}

// Done appends that key is done with and forgets its value; a key without
// a live record writes nothing. The key is forgotten even when the write
// fails (its record then comes back at the next Open).
func (l *Log) Done(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.live[key]; !ok {
		return nil
	}
	line, err := json.Marshal(record{Done: key})
	if err != nil {
		return err
	}
	err = l.appendLocked(append(line, '\n'))
	delete(l.live, key)
	l.compactLocked()
	return err
}

// Get returns key's live value.
func (l *Log) Get(key string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.live[key]
	return v, ok
}

// Live returns the live records by key (a copy of the map; the values
// are shared and must not be modified).
func (l *Log) Live() map[string][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string][]byte, len(l.live))
	for k, v := range l.live {
		m[k] = v
	}
	return m
}

// Close closes the log; it is not written again (writes return
// ErrClosed).
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// putLine is the record of a value put.
func putLine(value []byte) []byte {
	b := make([]byte, 0, len(value)+10)
	b = append(b, `{"put":`...)
	b = append(b, value...)
	return append(b, "}\n"...)
}

// openForAppend opens the log as it is for appending, without the
// unfinished last line a crash may have left (the next record would run
// into it), and returns its size.
func openForAppend(p string) (*os.File, int64, error) {
	data, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	size := int64(bytes.LastIndexByte(data, '\n') + 1)
	if size < int64(len(data)) {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	return f, size, nil
}

// rewrite writes the log anew with the live records only and opens it
// for appending. l.mu is held, or l is not shared yet.
func (l *Log) rewrite() error {
	tmp := l.path + ".tmp"
	// A stale temporary file is removed, not truncated: O_EXCL does not
	// follow a link planted in its place.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rewriting the intent log: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("rewriting the intent log: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	var size int64
	for _, v := range l.live {
		n, _ := w.Write(putLine(v))
		size += int64(n)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rewriting the intent log: %w", err)
	}
	nf, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the intent log: %w", err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.size, l.records = nf, size, len(l.live)
	return nil
}

// appendLocked appends one record. l.mu is held.
func (l *Log) appendLocked(line []byte) error {
	if l.closed {
		return ErrClosed
	}
	if l.f == nil {
		if err := l.rewrite(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	if err != nil {
		// A part written (a full disk) would run into the next record:
		// cut it off, or rewrite the log before the next one.
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.f.Close()
				l.f = nil
			}
		}
		return fmt.Errorf("appending to the intent log: %w", err)
	}
	l.size += int64(n)
	l.records++
	return nil
}

// compactLocked rewrites the log when it holds more than twice the
// records it needs. l.mu is held.
func (l *Log) compactLocked() {
	if l.closed || l.records <= 2*len(l.live)+compactSlack {
		return
	}
	if err := l.rewrite(); err != nil {
		// The log stays as it is, read right after a crash; the next
		// record tries again.
		l.logger().Error("rewriting the intent log failed", "log", l.path, "error", err)
	}
}
