package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxMetadataBlob bounds the manifests and configs read into memory, so a
// hostile archive cannot exhaust it with a "config" of gigabytes.
const maxMetadataBlob = 16 << 20

func (s *Store) blobPath(h v1.Hash) string { return filepath.Join(s.blobDir(), h.Hex) }

// hasBlob reports whether the blob is stored.
func (s *Store) hasBlob(h v1.Hash) bool {
	if h.Algorithm != "sha256" {
		return false
	}
	_, err := os.Stat(s.blobPath(h))
	return err == nil
}

// putBlob stores what r yields and returns its digest and size. If want is
// not zero the content must have that digest, or nothing is stored. The blob
// is written to a temporary file, synced and renamed, so a blob under its
// digest's name is always whole.
func (s *Store) putBlob(r io.Reader, want v1.Hash) (v1.Hash, int64, error) {
	if want != (v1.Hash{}) && want.Algorithm != "sha256" {
		return v1.Hash{}, 0, fmt.Errorf("digest %s: only sha256 is supported", want)
	}
	if want != (v1.Hash{}) && s.hasBlob(want) {
		// Content-addressed: what is stored is what was asked for. The
		// reader is not consumed; callers close it.
		fi, err := os.Stat(s.blobPath(want))
		if err != nil {
			return v1.Hash{}, 0, err
		}
		return want, fi.Size(), nil
	}
	f, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if want != (v1.Hash{}) && got != want {
		return v1.Hash{}, 0, fmt.Errorf("blob content has digest %s, not the %s it is listed under", got, want)
	}
	if s.hasBlob(got) {
		return got, n, nil
	}
	if err := f.Sync(); err != nil {
		return v1.Hash{}, 0, err
	}
	if err := f.Chmod(0o644); err != nil {
		return v1.Hash{}, 0, err
	}
	if err := os.Rename(f.Name(), s.blobPath(got)); err != nil {
		return v1.Hash{}, 0, err
	}
	return got, n, nil
}

// putJSON stores v marshalled as a blob.
func (s *Store) putJSON(v any) (v1.Hash, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	h, _, err := s.putBlob(bytes.NewReader(b), v1.Hash{})
	return h, b, err
}

// readBlob reads a small stored blob (a manifest or config) and checks its
// digest, so a blob damaged on disk is not trusted.
func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("digest %s: only sha256 is supported", h)
	}
	f, err := os.Open(s.blobPath(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataBlob+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBlob {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", h, maxMetadataBlob)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != h.Hex {
		return nil, fmt.Errorf("blob %s: content does not match its digest", h)
	}
	return b, nil
}
