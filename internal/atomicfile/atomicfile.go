// Package atomicfile writes files so that a crash leaves the old content or
// the new, never a torn mix: the state of images, networks, volumes and
// containers, and the configuration files berth fmt rewrites. Any berth
// package may import it; it imports nothing of berth.
package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data: a temporary file in the same
// directory is written, synced and given perm, renamed over path, and the
// directory is synced so the rename survives a crash too. A file that
// already holds data is left alone, so unchanged records are not rewritten.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if werr == nil {
		werr = tmp.Chmod(perm)
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return werr
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
