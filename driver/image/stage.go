package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// stage collects the blobs of one pull in a directory of its own under
// tmp/, each checked against its digest and size as it is written. Commit
// renames them into blobs/ (the manifests last, in the order they were
// staged from the top: index, then manifest, after the blobs they name);
// abort removes the directory. So a failed pull leaves the store as it
// was, and a blob under its digest's name is always whole.
type stage struct {
	s   *Store
	dir string

	mu     sync.Mutex
	blobs  []v1.Hash // layers and configs, in no order
	metas  []v1.Hash // manifests, top first
	raw    map[v1.Hash][]byte
	staged map[v1.Hash]bool
}

func (s *Store) newStage() (*stage, error) {
	dir, err := os.MkdirTemp(s.tmpDir(), "pull-")
	if err != nil {
		return nil, err
	}
	return &stage{s: s, dir: dir, raw: map[v1.Hash][]byte{}, staged: map[v1.Hash]bool{}}, nil
}

// bytes returns a manifest staged earlier in this pull.
func (st *stage) bytes(h v1.Hash) ([]byte, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	b, ok := st.raw[h]
	return b, ok
}

// errMismatch is what a blob whose content is not what its digest or size
// promise fails with.
var errMismatch = errors.New("content does not match its digest")

// put writes what r yields to the stage as the blob want, which must have
// size bytes (size < 0: any). Manifests (meta) are committed after the
// other blobs and kept in memory too, for bytes.
func (st *stage) put(r io.Reader, want v1.Hash, size int64, meta bool, progress func(int64)) error {
	if err := checkHash(want); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(st.dir, want.Hex), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		f.Close()
		if !keep {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	if size >= 0 {
		// One byte more than promised is enough to tell.
		r = io.LimitReader(r, size+1)
	}
	n, err := copyCounting(w, r, progress)
	if err != nil {
		return err
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	switch {
	case size >= 0 && n != size:
		return fmt.Errorf("%w: the registry sent %d bytes, the manifest lists %d", errMismatch, n, size)
	case got != want:
		return fmt.Errorf("%w: the registry sent content with digest %s", errMismatch, got)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	keep = true
	st.mu.Lock()
	defer st.mu.Unlock()
	st.staged[want] = true
	if meta {
		st.metas = append(st.metas, want)
		if b, err := os.ReadFile(f.Name()); err == nil {
			st.raw[want] = b
		}
	} else {
		st.blobs = append(st.blobs, want)
	}
	return nil
}

// commit renames the staged blobs into the store: blobs first, then the
// manifests from the innermost out, so a manifest is never stored before
// what it names.
func (st *stage) commit() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	order := append([]v1.Hash(nil), st.blobs...)
	for i := len(st.metas) - 1; i >= 0; i-- {
		order = append(order, st.metas[i])
	}
	for _, h := range order {
		if st.s.hasBlob(h) {
			continue
		}
		if err := os.Rename(filepath.Join(st.dir, h.Hex), st.s.blobPath(h)); err != nil {
			return err
		}
	}
	return nil
}

// abort removes whatever is still staged; after commit, only the
// directory.
func (st *stage) abort() { os.RemoveAll(st.dir) }
