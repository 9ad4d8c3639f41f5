package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Follower reads decision logs as they grow, as a log shipper does: every
// file matching its patterns, by inode, surviving rotation. A renamed or
// removed file is read to its end (and kept open one more poll, for a
// writer that wrote between its own rotation check and its write) before
// the new file at the path is read from its start; a truncated file
// (copytruncate) is read again from its start. Files present when Follow
// starts are read from their end unless FromStart is set; files that
// appear later are read whole.
//
// A node daemon hosts one Follower per set of logs; it is not safe for
// concurrent use (Follow owns it).
type Follower struct {
	// Patterns are filepath.Match globs of the logs to follow.
	Patterns []string
	// Poll is how often the files are checked (default one second).
	Poll time.Duration
	// FromStart reads files present at start from their beginning.
	FromStart bool
	// Entry gets every entry, in file order.
	Entry func(Entry)
	// Problem gets what could not be read: a line that is not an entry,
	// a line too long, a file that cannot be read. Following goes on.
	Problem func(FollowProblem)
	// Files, when set, gets the number of files followed after each poll.
	Files func(int)

	files    map[string]*followed
	draining []*followed
	buf      []byte
}

// FollowProblem is something a Follower could not read.
type FollowProblem struct {
	// Kind is "malformed", "too-long" or "read".
	Kind string
	Path string
	Err  error
}

// followed is one open file.
type followed struct {
	path string
	f    *os.File
	// partial is the unterminated tail of the last read.
	partial []byte
	// skipping is set while a too-long line is being skipped.
	skipping bool
}

// ValidatePatterns reports a pattern filepath.Match cannot use.
func ValidatePatterns(patterns []string) error {
	if len(patterns) == 0 {
		return errors.New("no decision log to follow")
	}
	for _, p := range patterns {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("decision log pattern %q: %w", p, err)
		}
	}
	return nil
}

// Follow reads the logs until ctx is done, then closes them.
func (fl *Follower) Follow(ctx context.Context) error {
	if err := ValidatePatterns(fl.Patterns); err != nil {
		return err
	}
	poll := fl.Poll
	if poll <= 0 {
		poll = time.Second
	}
	fl.files = map[string]*followed{}
	defer fl.closeAll()
	fl.Scan(!fl.FromStart)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// What was written before the end is still counted.
			fl.Scan(false)
			return nil
		case <-t.C:
			fl.Scan(false)
		}
	}
}

// Scan does one poll: it reads what was appended to every followed file,
// notices rotation, and opens new files (from their end when atEnd). Follow
// calls it; tests call it to step.
func (fl *Follower) Scan(atEnd bool) {
	if fl.files == nil {
		fl.files = map[string]*followed{}
	}
	// Files rotated away in an earlier poll: whatever a late writer put
	// there, then closed once a poll brought nothing.
	kept := fl.draining[:0]
	for _, d := range fl.draining {
		if fl.read(d) {
			kept = append(kept, d)
			continue
		}
		d.f.Close()
	}
	fl.draining = kept
	for path, fw := range fl.files {
		fl.read(fw)
		cur, err := os.Stat(path)
		open, ferr := fw.f.Stat()
		if err == nil && ferr == nil && os.SameFile(open, cur) {
			if cur.Size() < fw.offset() {
				// Truncated in place: the writer appends at the new end.
				fw.f.Seek(0, io.SeekStart)
				fw.partial, fw.skipping = fw.partial[:0], false
				fl.read(fw)
			}
			continue
		}
		// Renamed or removed: keep reading the old inode for a while;
		// a new file at the path is picked up below, from its start.
		delete(fl.files, path)
		fl.draining = append(fl.draining, fw)
	}
	for _, pattern := range fl.Patterns {
		matches, _ := filepath.Glob(pattern)
		for _, path := range matches {
			if _, ok := fl.files[path]; ok {
				continue
			}
			fw, err := openFollowed(path, atEnd)
			if err != nil {
				fl.problem("read", path, err)
				continue
			}
			if fw == nil {
				continue
			}
			fl.files[path] = fw
			fl.read(fw)
		}
	}
	if fl.Files != nil {
		fl.Files(len(fl.files))
	}
}

func openFollowed(path string, atEnd bool) (*followed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		// A FIFO or device matching the pattern is not a log.
		f.Close()
		return nil, nil
	}
	if atEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &followed{path: path, f: f}, nil
}

// offset is where the next read starts.
func (fw *followed) offset() int64 {
	off, err := fw.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0
	}
	return off
}

// read reads fw to its end, handing over every complete line; it reports
// whether there was anything.
func (fl *Follower) read(fw *followed) bool {
	if fl.buf == nil {
		fl.buf = make([]byte, 64<<10)
	}
	buf := fl.buf
	got := false
	for {
		n, err := fw.f.Read(buf)
		if n > 0 {
			got = true
			fl.lines(fw, buf[:n])
		}
		if err == io.EOF || n == 0 {
			return got
		}
		if err != nil {
			fl.problem("read", fw.path, err)
			return got
		}
	}
}

// lines splits data into lines, keeping an unterminated tail for later.
func (fl *Follower) lines(fw *followed, data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if fw.skipping {
				return
			}
			fw.partial = append(fw.partial, data...)
			// A line longer than maxLine (read.go) is skipped and reported.
			if len(fw.partial) > maxLine {
				fl.problem("too-long", fw.path, fmt.Errorf("a line longer than %d bytes", maxLine))
				fw.partial, fw.skipping = fw.partial[:0], true
			}
			return
		}
		line := data[:i]
		data = data[i+1:]
		if fw.skipping {
			fw.skipping = false
			continue
		}
		if len(fw.partial) > 0 {
			line = append(fw.partial, line...)
			fw.partial = fw.partial[:0]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) > maxLine {
			fl.problem("too-long", fw.path, fmt.Errorf("a line longer than %d bytes", maxLine))
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			fl.problem("malformed", fw.path, err)
			continue
		}
		if fl.Entry != nil {
			fl.Entry(e)
		}
	}
}

func (fl *Follower) problem(kind, path string, err error) {
	if fl.Problem != nil {
		fl.Problem(FollowProblem{Kind: kind, Path: path, Err: err})
	}
}

func (fl *Follower) closeAll() {
	for _, fw := range fl.files {
		fw.f.Close()
	}
	for _, fw := range fl.draining {
		fw.f.Close()
	}
	fl.files, fl.draining = nil, nil
}
