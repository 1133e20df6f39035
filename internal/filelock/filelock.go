// Package filelock takes exclusive locks on lock files that their holders
// may delete, for locks that must hold across berth processes: a name being
// claimed by a driver, say. Any berth package may import it; it imports
// nothing of berth.
package filelock

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive flock on path, creating it and its directory.
// A holder may remove the file before releasing it (so lock files do not
// pile up), so a lock taken on a file no longer at path is dropped and
// taken again on the one there now. Closing the file releases the lock.
func Lock(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		var held, now unix.Stat_t
		if err == nil {
			err = unix.Fstat(int(f.Fd()), &held)
		}
		if err == nil {
			err = unix.Stat(path, &now)
			if errors.Is(err, unix.ENOENT) {
				f.Close()
				continue
			}
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		if held.Dev == now.Dev && held.Ino == now.Ino {
			return f, nil
		}
		f.Close()
	}
}
