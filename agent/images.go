package agent

import (
	"context"
	"path/filepath"

	"github.com/seed-e88ffcd2/berth/driver/image"
)

// The image commands (berth image pull/push, berth lock) need the image
// store and the registries, not the state store, networks or containers:
// they open the store alone. The types are the image driver's, named here
// so that the CLI depends on the agent only.
type (
	// ImageProgress reports a blob of a pull, or a push's bytes.
	ImageProgress = image.Progress
	// PullOptions tune a pull.
	PullOptions = image.PullOptions
	// PulledImage describes what a pull stored.
	PulledImage = image.Pulled
)

// The states an ImageProgress reports.
const (
	BlobWaiting     = image.BlobWaiting
	BlobExists      = image.BlobExists
	BlobDownloading = image.BlobDownloading
	BlobDone        = image.BlobDone
	BlobFailed      = image.BlobFailed
	BlobPushing     = image.BlobPushing
)

func imageConfig(cfg Config) image.Config {
	return image.Config{Root: filepath.Join(cfg.StateDir, "images"), InsecureRegistries: cfg.InsecureRegistries}
}

// Images is a host's image store with its registry settings.
type Images struct{ store *image.Store }

// OpenImages opens the host's image store only.
func OpenImages(cfg Config) (*Images, error) {
	s, err := image.New(imageConfig(cfg))
	if err != nil {
		return nil, err
	}
	return &Images{store: s}, nil
}

// Pull fetches a registry reference into the store (image.Store.Pull).
func (i *Images) Pull(ctx context.Context, ref string, opts PullOptions) (*PulledImage, error) {
	return i.store.Pull(ctx, ref, opts)
}

// Push uploads a stored image to a registry reference and returns its
// manifest digest (image.Store.Push).
func (i *Images) Push(ctx context.Context, src, dst string, progress func(ImageProgress)) (string, error) {
	return i.store.Push(ctx, src, dst, progress)
}

// RemoteDigest asks the registry which digest a reference names now.
func (i *Images) RemoteDigest(ctx context.Context, ref string) (string, error) {
	return i.store.RemoteDigest(ctx, ref)
}
