package vlmcs

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// The replay memory on disk (`replay_file`). Without it the memory starts empty with the
// process, and a signed update whose time signed is after the start but that was made before
// it (by a sender whose clock runs ahead, within its fudge) verifies again after a restart.
// With it, every accepted MAC is appended, and the file synced, before the update is applied
// and answered, and the unexpired entries are loaded at startup: a captured update acts once
// across restarts and kill -9 too.
//
// The file is text, one entry a line: the end of the entry's window (Unix seconds), the key
// name and the MAC in hex, separated by one space. A last line without its newline is the
// trace of a write cut short by a crash (its update was never answered) and is ignored. Lines
// of expired entries are dropped when the file is rewritten (compacted), which happens when it
// holds more than twice the unexpired entries plus replayCompactSlack lines.

// Bounds of the replay file.
const (
	maxReplayFile      = 64 << 20 // bytes read at startup
	maxReplayLine      = 512      // bytes of one line: a 255-byte key name, a 64-byte MAC in hex
	replayCompactSlack = 4096     // lines beyond twice the unexpired entries before a rewrite
)

// replayStore appends accepted MACs to the replay file. Its methods are called with the
// replayGuard's lock held.
type replayStore struct {
	path  string
	f     *os.File
	lines int // lines in the file
}

// parseReplayFile reads replay entries from data (the file's contents, named path in errors)
// and returns those whose window ends after now.
func parseReplayFile(path string, data []byte, now time.Time) ([]replayEntry, error) {
	if len(data) > maxReplayFile {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a replay file may hold", path, len(data), maxReplayFile)
	}
	var out []replayEntry
	line := 0
	for len(data) > 0 {
		line++
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // a write cut short by a crash: its update was never answered
		}
		l := data[:i]
		data = data[i+1:]
		if len(l) > maxReplayLine {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", path, line, maxReplayLine)
		}
		f := bytes.Split(l, []byte{' '})
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"END KEY MAC\", got %d fields", path, line, len(f))
		}
		end, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || end < 0 || end > 1<<40 {
			return nil, fmt.Errorf("%s:%d: window end %q is not a Unix time", path, line, f[0])
		}
		key := string(f[1])
		if _, ok := dns.IsDomainName(key); !ok || !dns.IsFqdn(key) || len(key) > 255 || !dnsname.Visible(key) {
			return nil, fmt.Errorf("%s:%d: %q is not a key name", path, line, f[1])
		}
		mac := string(f[2])
		if b, err := hex.DecodeString(mac); err != nil || len(b) == 0 || len(b) > 64 || mac != hex.EncodeToString(b) {
			return nil, fmt.Errorf("%s:%d: MAC %q is not lower-case hex of 1..64 bytes", path, line, f[2])
		}
		if exp := time.Unix(end, 0); exp.After(now) {
			out = append(out, replayEntry{key: key, id: key + "/" + mac, expires: exp})
		}
	}
	return out, nil
}

// openReplayStore loads the unexpired entries of the replay file at path (creating it, mode
// 0600, when absent) and opens it for appending.
func openReplayStore(path string, now time.Time) (*replayStore, []replayEntry, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("replay_file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxReplayFile+1))
	if err == nil {
		var entries []replayEntry
		entries, err = parseReplayFile(path, data, now)
		if err == nil {
			s := &replayStore{path: path, f: f, lines: bytes.Count(data, []byte{'\n'})}
			if err = s.rewrite(entries); err == nil {
				return s, entries, nil
			}
		}
	}
	f.Close()
	return nil, nil, fmt.Errorf("replay_file: %w", err)
}

// add appends one entry and syncs the file: when it returns nil the entry survives a crash.
func (s *replayStore) add(e replayEntry) error {
	b := make([]byte, 0, 64+len(e.id))
	b = strconv.AppendInt(b, e.expires.Unix(), 10)
	b = append(b, ' ')
	b = append(b, e.key...)
	b = append(b, ' ')
	b = append(b, e.id[len(e.key)+1:]...)
	b = append(b, '\n')
	if _, err := s.f.Write(b); err != nil {
		return err
	}
	s.lines++
	return s.f.Sync()
}

// compact rewrites the file with live, the unexpired entries, when it has grown past them.
func (s *replayStore) compact(live []replayEntry) error {
	if s.lines <= 2*len(live)+replayCompactSlack {
		return nil
	}
	return s.rewrite(live)
}

// rewrite replaces the file by one holding entries: written to a temporary file beside it,
// synced and renamed over it, so that a crash leaves the old file or the new one.
func (s *replayStore) rewrite(entries []replayEntry) error {
	tmp, err := os.CreateTemp(filepath.Dir(s.path), "."+filepath.Base(s.path)+".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	for _, e := range entries {
		fmt.Fprintf(w, "%d %s %s\n", e.expires.Unix(), e.key, e.id[len(e.key)+1:])
	}
	err = errors.Join(w.Flush(), tmp.Chmod(0o600), tmp.Sync())
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	if _, err := tmp.Seek(0, io.SeekEnd); err != nil {
		tmp.Close()
		return err
	}
	s.f.Close()
	s.f, s.lines = tmp, len(entries)
	return nil
}
