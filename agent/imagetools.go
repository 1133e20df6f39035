package agent

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/seed-e88ffcd2/berth/build"
	"github.com/seed-e88ffcd2/berth/driver/image"
)

// The image toolbox (berth image ls, inspect, history, tag, rm, prune,
// save, load, import; berth system df) works on the image store alone, as
// pull and push do; what containers use comes from the Runtime (the
// agent's API, or the host). berth build needs the host: its RUN steps
// are containers.
type (
	// ImageSummary is one named image (berth image ls).
	ImageSummary = image.Summary
	// ImageDetails is one image (berth image inspect).
	ImageDetails = image.Details
	// ImageHistory is one step of an image's history.
	ImageHistory = image.HistoryEntry
	// ImageRemoved is what rm or prune removed.
	ImageRemoved = image.Removed
	// ImagePruneOptions say what prune removes.
	ImagePruneOptions = image.PruneOptions
	// ImageUsage is what the store takes on disk.
	ImageUsage = image.Usage
	// LoadedImage is an image load or import stored.
	LoadedImage = image.Loaded
	// ImageConfig is an image's run configuration (CMD, ENV, …), for
	// import.
	ImageConfig = v1.Config

	// BuildOptions describe a build (berth build).
	BuildOptions = build.Options
	// BuildEvent is one thing a build reports.
	BuildEvent = build.Event
	// BuildResult is what a build made.
	BuildResult = build.Result
)

// The kinds of BuildEvent.
const (
	BuildStep    = build.EventStep
	BuildCached  = build.EventCached
	BuildDone    = build.EventDone
	BuildOutput  = build.EventOutput
	BuildWarning = build.EventWarning
)

// Image archive formats (berth image save --format).
const (
	ImageFormatDocker = image.FormatDocker
	ImageFormatOCI    = image.FormatOCI
)

// ImageChanges is the image config Dockerfile instructions make, for
// berth image import -c (build.Changes).
func ImageChanges(changes []string) (*ImageConfig, error) { return build.Changes(changes) }

// Build builds an image from a Dockerfile on the host.
func (h *Host) Build(ctx context.Context, opts BuildOptions) (*BuildResult, error) {
	return h.builder.Run(ctx, opts)
}

// List describes every named image.
func (i *Images) List() ([]ImageSummary, error) { return i.store.List() }

// Inspect describes one image.
func (i *Images) Inspect(ref string) (*ImageDetails, error) { return i.store.Inspect(ref) }

// History lists how an image was made, newest step first.
func (i *Images) History(ref string) ([]ImageHistory, error) { return i.store.History(ref) }

// Tag records name for the image src names.
func (i *Images) Tag(src, name string) (string, error) {
	d, err := i.store.TagName(src, name)
	return d.String(), err
}

// Remove removes an image name (or every name of a digest); what the
// containers use, or a project recorded, is refused.
func (i *Images) Remove(ctx context.Context, ref string, containers []Container) (*ImageRemoved, error) {
	return i.store.Remove(ctx, ref, users(containers))
}

// Prune drops the build cache and, with All, unused images no project
// recorded.
func (i *Images) Prune(ctx context.Context, opts ImagePruneOptions, containers []Container) (*ImageRemoved, error) {
	return i.store.Prune(ctx, opts, users(containers))
}

// Save writes images to w as a docker save or OCI layout archive.
func (i *Images) Save(w io.Writer, refs []string, format string) error {
	return i.store.Save(w, refs, format)
}

// Load stores the images of an archive; name names an unnamed one.
func (i *Images) Load(ctx context.Context, archive, name string) ([]LoadedImage, error) {
	return i.store.Load(ctx, archive, image.LoadOptions{Name: name})
}

// Import makes an image of a root filesystem tar or directory.
func (i *Images) Import(ctx context.Context, src, name string, cfg *ImageConfig, message string) (*LoadedImage, error) {
	return i.store.Import(ctx, src, image.ImportOptions{Name: name, Config: cfg, Message: message})
}

// DiskUsage measures the store.
func (i *Images) DiskUsage() (*ImageUsage, error) { return i.store.DiskUsage() }

// users tells, from the host's containers, which use an image digest.
func users(containers []Container) image.Users {
	byDigest := map[string][]string{}
	for _, c := range containers {
		ref := c.Image
		if j := strings.LastIndexByte(ref, '@'); j >= 0 {
			ref = ref[j+1:]
		}
		byDigest[ref] = append(byDigest[ref], c.Name)
	}
	return func(d v1.Hash) []string { return byDigest[d.String()] }
}

// SystemUsage is what berth system df shows: the image store, the
// containers' writable layers and the volumes.
type SystemUsage struct {
	Images *ImageUsage `json:"images"`
	// Containers counts the containers, Running those running, and
	// ContainerBytes what their writable layers (upper directories) take.
	Containers     int   `json:"containers"`
	Running        int   `json:"running"`
	ContainerBytes int64 `json:"container_bytes"`
	// Volumes counts the local volumes and VolumeBytes what they take.
	Volumes     int   `json:"volumes"`
	VolumeBytes int64 `json:"volume_bytes"`
}

// SystemUsage measures the host: the image store, each container's
// writable layer, each volume.
func (i *Images) SystemUsage(cfg Config, containers []Container) (*SystemUsage, error) {
	u := &SystemUsage{Containers: len(containers)}
	var err error
	if u.Images, err = i.store.DiskUsage(); err != nil {
		return nil, err
	}
	for _, c := range containers {
		if c.Status == "running" {
			u.Running++
		}
		u.ContainerBytes += treeSize(filepath.Join(cfg.StateDir, "containers", c.ID, "upper"))
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.StateDir, "volumes"))
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			u.Volumes++
			u.VolumeBytes += treeSize(filepath.Join(cfg.StateDir, "volumes", e.Name()))
		}
	}
	return u, nil
}

// treeSize is the space a tree takes (allocated blocks, each inode once);
// what cannot be read counts nothing.
func treeSize(root string) int64 {
	var n int64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		n += st.Blocks * 512
		return nil
	})
	return n
}
