package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/resource"
)

// LockInfo says who holds a project's operation lock, for the message a
// second operation gets.
type LockInfo struct {
	ID        string    `json:"id"`
	Operation string    `json:"operation"` // "apply", "plan", "destroy"
	Who       string    `json:"who"`       // user@host
	PID       int       `json:"pid"`
	Created   time.Time `json:"created"`
}

// NewLockInfo describes an operation of this process.
func NewLockInfo(operation string) LockInfo {
	who := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		who += "@" + host
	}
	return LockInfo{
		ID:        uuid.NewString(),
		Operation: operation,
		Who:       who,
		PID:       os.Getpid(),
		Created:   time.Now().UTC(),
	}
}

// LockError is returned when a project's lock is held. It matches
// resource.ErrConflict.
type LockError struct {
	Project string
	// Holder is zero when the holder had not yet written its info.
	Holder LockInfo
}

func (e *LockError) Error() string {
	h := e.Holder
	if h.PID == 0 {
		return fmt.Sprintf("state of project %q is locked by another berth process", e.Project)
	}
	who := fmt.Sprintf("pid %d", h.PID)
	if h.Who != "" {
		who += ", " + h.Who
	}
	return fmt.Sprintf("state of project %q is locked by berth %s (%s) since %s",
		e.Project, h.Operation, who, h.Created.UTC().Format(time.RFC3339))
}

func (e *LockError) Unwrap() error { return resource.ErrConflict }

// Lock takes the project's exclusive operation lock, so that two applies
// never interleave, or returns a *LockError naming the holder.
//
// The lock is an flock on a file beside the database
// (<db>.locks/<project>.lock) holding info as JSON. The kernel releases it
// when its holder exits, so a crashed operation never leaves a stale lock
// behind, and there is nothing to force-unlock. It belongs to the caller,
// not to the open database: Close does not release it, unlock does. Two
// Lock calls conflict even within one process.
func (s *Store) Lock(project string, info LockInfo) (unlock func() error, err error) {
	if err := checkProject(project); err != nil {
		return nil, err
	}
	if info.PID == 0 {
		info.PID = os.Getpid()
	}
	if info.Created.IsZero() {
		info.Created = s.now()
	}
	return lockFile(filepath.Join(lockDir(s.path), project+".lock"), project, info)
}

func lockDir(dbPath string) string { return dbPath + ".locks" }

func lockFile(path, project string, info LockInfo) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state of project %q: %w", project, err)
	}
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			lerr := &LockError{Project: project}
			// A holder between flock and write leaves the file empty;
			// the message then just names no one.
			if b, err := io.ReadAll(f); err == nil {
				_ = json.Unmarshal(b, &lerr.Holder)
			}
			return nil, lerr
		}
		return nil, fmt.Errorf("lock state of project %q: %w", project, err)
	}
	b, err := json.Marshal(info)
	if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.WriteAt(b, 0)
	}
	if err != nil {
		f.Close() // closing releases the flock
		return nil, fmt.Errorf("lock state of project %q: %w", project, err)
	}
	var once sync.Once
	var unlockErr error
	unlock := func() error {
		once.Do(func() {
			// Emptied first, so nobody reads a departed holder's info.
			// The file itself stays: removing it would let a waiter lock
			// an unlinked inode while a newcomer locks a fresh file.
			truncErr := f.Truncate(0)
			unlockErr = errors.Join(truncErr, f.Close())
		})
		return unlockErr
	}
	return unlock, nil
}
