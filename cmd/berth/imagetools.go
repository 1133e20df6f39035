package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/seed-e88ffcd2/berth/agent"
	"github.com/seed-e88ffcd2/berth/plan"
)

func init() {
	for name, cmd := range map[string]command{
		"ls":      {"list the named images", (*CLI).imageLs},
		"inspect": {"show images' manifests and configs as JSON (inspect NAME...)", (*CLI).imageInspect},
		"history": {"show how an image was made (history NAME)", (*CLI).imageHistory},
		"tag":     {"name an image (tag SOURCE NAME)", (*CLI).imageTag},
		"rm":      {"remove image names; what no name needs is collected (rm NAME...)", (*CLI).imageRm},
		"prune":   {"drop the build cache and unused content (-a: also unused images)", (*CLI).imagePrune},
		"save":    {"write images to a docker save or OCI archive (save -o FILE NAME...)", (*CLI).imageSave},
		"load":    {"store the images of a docker save or OCI archive (load -i FILE)", (*CLI).imageLoad},
		"import":  {"make an image of a root filesystem tar or directory (import FILE|DIR NAME)", (*CLI).imageImport},
	} {
		imageCommands[name] = cmd
	}
	commands["system"] = command{"host-wide information (system df)", (*CLI).system}
}

// images opens the image store alone, as pull and push do.
func (c *CLI) images() (*agent.Images, error) {
	return agent.OpenImages(agent.DefaultConfig())
}

// containers lists every container on the host, through the agent when
// one runs: what rm and prune must not take from.
func (c *CLI) containers(ctx context.Context) ([]agent.Container, error) {
	rt, release, err := c.runtime()
	if err != nil {
		return nil, err
	}
	defer release()
	return rt.List(ctx, true)
}

func (c *CLI) imageLs(ctx context.Context, args []string) int {
	fs := c.verbFlags("image ls", "[flags]")
	format := formatFlag(fs)
	quiet := fs.BoolP("quiet", "q", false, "print only the names")
	noTrunc := fs.Bool("no-trunc", false, "show whole digests")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs("image ls", pos); !ok {
		return code
	}
	asJSON, err := format()
	if err != nil {
		return c.errorf("%v", err)
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	list, err := images.List()
	if err != nil {
		return c.errorf("%v", err)
	}
	switch {
	case asJSON:
		for _, s := range list {
			_ = c.writeJSONLine(s)
		}
	case *quiet:
		for _, s := range list {
			fmt.Fprintln(c.Stdout, s.Name)
		}
	default:
		writeImages(c.Stdout, list, time.Now(), !*noTrunc)
	}
	return 0
}

// writeImages prints berth image ls's table.
func writeImages(w io.Writer, list []agent.ImageSummary, now time.Time, trunc bool) {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tIMAGE ID\tCREATED\tSIZE\tOWNER")
	for _, s := range list {
		id := s.ID
		if trunc {
			id = strings.TrimPrefix(id, "sha256:")[:min(12, len(strings.TrimPrefix(id, "sha256:")))]
		}
		created := "-"
		if !s.Created.IsZero() && s.Created.Unix() > 0 {
			created = humanDuration(now.Sub(s.Created)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, id, created, decimalSize(uint64(s.Size)), dash(s.Owner))
	}
	tw.Flush()
}

func (c *CLI) imageInspect(ctx context.Context, args []string) int {
	fs := c.verbFlags("image inspect", "NAME...")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.errorf("image inspect takes one or more image names or digests")
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	var out []*agent.ImageDetails
	failed := false
	for _, ref := range pos {
		d, err := images.Inspect(ref)
		if err != nil {
			c.errorf("%v", err)
			failed = true
			continue
		}
		out = append(out, d)
	}
	if out == nil {
		out = []*agent.ImageDetails{}
	}
	b, _ := json.MarshalIndent(out, "", "    ")
	fmt.Fprintln(c.Stdout, string(b))
	if failed {
		return 1
	}
	return 0
}

func (c *CLI) imageHistory(ctx context.Context, args []string) int {
	fs := c.verbFlags("image history", "[flags] NAME")
	format := formatFlag(fs)
	noTrunc := fs.Bool("no-trunc", false, "show whole digests and commands")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.errorf("image history takes one image name or digest")
	}
	asJSON, err := format()
	if err != nil {
		return c.errorf("%v", err)
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	hist, err := images.History(pos[0])
	if err != nil {
		return c.errorf("%v", err)
	}
	if asJSON {
		for _, h := range hist {
			_ = c.writeJSONLine(h)
		}
		return 0
	}
	writeHistory(c.Stdout, hist, time.Now(), !*noTrunc)
	return 0
}

// writeHistory prints berth image history's table, newest step first.
func writeHistory(w io.Writer, hist []agent.ImageHistory, now time.Time, trunc bool) {
	tw := newTable(w)
	fmt.Fprintln(tw, "LAYER\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
	for _, h := range hist {
		layer := "<none>"
		if h.Layer != "" {
			layer = h.Layer
			if trunc {
				layer = strings.TrimPrefix(layer, "sha256:")[:12]
			}
		}
		created := "-"
		if !h.Created.IsZero() && h.Created.Unix() > 0 {
			created = humanDuration(now.Sub(h.Created)) + " ago"
		}
		by := oneLine(h.CreatedBy)
		if trunc {
			by = ellipsis(by, 45)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", layer, created, by, decimalSize(uint64(h.Size)), h.Comment)
	}
	tw.Flush()
}

func (c *CLI) imageTag(ctx context.Context, args []string) int {
	fs := c.verbFlags("image tag", "SOURCE NAME")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return c.errorf("image tag takes a stored image (name or digest) and the new name: berth image tag app:1 app:stable")
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	if _, err := images.Tag(pos[0], pos[1]); err != nil {
		return c.errorf("%v", err)
	}
	return 0
}

func (c *CLI) imageRm(ctx context.Context, args []string) int {
	fs := c.verbFlags("image rm", "NAME...")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.errorf("image rm takes one or more image names or digests")
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	cs, err := c.containers(ctx)
	if err != nil {
		return c.errorf("listing the containers that may use the images: %v", err)
	}
	failed := false
	for _, ref := range pos {
		r, err := images.Remove(ctx, ref, cs)
		if r != nil {
			printRemoved(c.Stdout, r)
		}
		if err != nil {
			c.errorf("%v", err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

func printRemoved(w io.Writer, r *agent.ImageRemoved) {
	for _, n := range r.Untagged {
		fmt.Fprintf(w, "Untagged: %s\n", n)
	}
	for _, d := range r.Deleted {
		fmt.Fprintf(w, "Deleted: %s\n", d)
	}
}

func (c *CLI) imagePrune(ctx context.Context, args []string) int {
	fs := c.verbFlags("image prune", "[flags]")
	all := fs.BoolP("all", "a", false, "also remove every image no container uses and no project recorded")
	allCache := fs.Bool("build-cache", false, "drop the whole build cache (by default only the entries that keep layers no image has)")
	keepCache := fs.Bool("keep-build-cache", false, "keep the build cache")
	force := fs.BoolP("force", "f", false, "do not ask for confirmation")
	format := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs("image prune", pos); !ok {
		return code
	}
	asJSON, err := format()
	if err != nil {
		return c.errorf("%v", err)
	}
	if !*force {
		what := "build cache entries and content no image needs"
		if *all {
			what = "every image no container uses and no project recorded, and the build cache entries and content they alone needed"
		}
		if !c.TTY {
			return c.errorf("image prune removes %s: pass -f to confirm", what)
		}
		fmt.Fprintf(c.Stdout, "This removes %s.\nAre you sure you want to continue? [y/N] ", what)
		var answer string
		_, _ = fmt.Fscanln(c.Stdin, &answer)
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return 1
		}
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	cs, err := c.containers(ctx)
	if err != nil {
		return c.errorf("listing the containers that may use the images: %v", err)
	}
	r, err := images.Prune(ctx, agent.ImagePruneOptions{All: *all, AllBuildCache: *allCache, KeepBuildCache: *keepCache}, cs)
	if r != nil {
		if asJSON {
			_ = c.writeJSONLine(r)
		} else {
			printRemoved(c.Stdout, r)
			if r.BuildCache > 0 {
				fmt.Fprintf(c.Stdout, "Build cache entries dropped: %d\n", r.BuildCache)
			}
			fmt.Fprintf(c.Stdout, "Total reclaimed space: %s\n", plan.HumanBytes(r.Reclaimed))
		}
	}
	if err != nil {
		return c.errorf("%v", err)
	}
	return 0
}

func (c *CLI) imageSave(ctx context.Context, args []string) int {
	fs := c.verbFlags("image save", "[flags] NAME...")
	output := fs.StringP("output", "o", "", "write to FILE (default: standard output, unless it is a terminal)")
	archFormat := fs.String("format", agent.ImageFormatDocker, "archive format: docker (docker save's: docker and podman load it) or oci (an OCI image layout)")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return c.errorf("image save takes one or more image names or digests")
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	if *output == "" {
		if writesToTerminal(c.Stdout) {
			return c.errorf("refusing to write an archive to a terminal: give -o FILE, or redirect the output")
		}
		if err := images.Save(c.Stdout, pos, *archFormat); err != nil {
			return c.errorf("%v", err)
		}
		return 0
	}
	path, err := c.abs(*output)
	if err != nil {
		return c.errorf("%v", err)
	}
	// Written beside the target and renamed: a failed save leaves no
	// half archive under the name.
	tmp, err := os.CreateTemp(dirOf(path), ".berth-save-*")
	if err != nil {
		return c.errorf("%v", err)
	}
	err = images.Save(tmp, pos, *archFormat)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return c.errorf("%v", err)
	}
	return 0
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return "/"
}

func (c *CLI) imageLoad(ctx context.Context, args []string) int {
	fs := c.verbFlags("image load", "[flags]")
	input := fs.StringP("input", "i", "", "read the archive from FILE (default: standard input)")
	name := fs.StringP("tag", "t", "", "name an image the archive leaves unnamed")
	format := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if code, ok := c.noArgs("image load", pos); !ok {
		return code
	}
	asJSON, err := format()
	if err != nil {
		return c.errorf("%v", err)
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	path := *input
	if path == "" {
		// An archive is read several times: standard input is copied
		// to a file first.
		if f, ok := c.Stdin.(*os.File); ok && isTerminal(f) {
			return c.errorf("no archive: give -i FILE, or redirect one to standard input")
		}
		tmp, err := os.CreateTemp("", "berth-load-*.tar")
		if err != nil {
			return c.errorf("%v", err)
		}
		defer os.Remove(tmp.Name())
		_, err = io.Copy(tmp, c.Stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return c.errorf("reading the archive: %v", err)
		}
		path = tmp.Name()
	} else if path, err = c.abs(path); err != nil {
		return c.errorf("%v", err)
	}
	loaded, err := images.Load(ctx, path, *name)
	if err != nil {
		msg := err.Error()
		if *input == "" {
			// The copy of standard input is no file the user knows.
			msg = strings.ReplaceAll(msg, "archive "+path, "the archive on stdin")
			msg = strings.ReplaceAll(msg, path, "stdin")
		}
		return c.errorf("%s", msg)
	}
	for _, l := range loaded {
		if asJSON {
			_ = c.writeJSONLine(l)
			continue
		}
		for _, n := range l.Names {
			fmt.Fprintf(c.Stdout, "Loaded image: %s (%s)\n", n, shortDigest(l.Digest))
		}
	}
	return 0
}

func (c *CLI) imageImport(ctx context.Context, args []string) int {
	fs := c.verbFlags("image import", "[flags] FILE|DIR NAME")
	changes := fs.StringArrayP("change", "c", nil, `apply a Dockerfile instruction to the image's config, such as 'CMD ["sh"]' (repeatable)`)
	message := fs.StringP("message", "m", "", "a comment for the image's history")
	pos, code, ok := c.parseVerb(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 2 {
		return c.errorf("image import takes a root filesystem (a tar, gzipped or not, or a directory) and a name: berth image import rootfs.tar app:1")
	}
	src, err := c.abs(pos[0])
	if err != nil {
		return c.errorf("%v", err)
	}
	cfg, err := agent.ImageChanges(*changes)
	if err != nil {
		return c.errorf("%v", err)
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	l, err := images.Import(ctx, src, pos[1], cfg, *message)
	if err != nil {
		return c.errorf("%v", err)
	}
	fmt.Fprintln(c.Stdout, l.Digest)
	return 0
}

// system is berth system SUBCOMMAND.
func (c *CLI) system(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] != "df" {
		fmt.Fprintln(c.Stderr, "Usage: berth system df [--format json]\n\nCommands:\n  df     show what images, containers, volumes and the build cache take on disk")
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			return map[bool]int{true: 1, false: 0}[len(args) == 0]
		}
		return 1
	}
	fs := c.verbFlags("system df", "[flags]")
	format := formatFlag(fs)
	pos, code, ok := c.parseVerb(fs, args[1:])
	if !ok {
		return code
	}
	if code, ok := c.noArgs("system df", pos); !ok {
		return code
	}
	asJSON, err := format()
	if err != nil {
		return c.errorf("%v", err)
	}
	images, err := c.images()
	if err != nil {
		return c.errorf("%v", err)
	}
	cs, err := c.containers(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return c.errorf("listing the containers: %v", err)
	}
	u, err := images.SystemUsage(agent.DefaultConfig(), cs)
	if err != nil {
		return c.errorf("%v", err)
	}
	if asJSON {
		_ = c.writeJSONLine(u)
		return 0
	}
	tw := newTable(c.Stdout)
	fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s\n", u.Images.Images, activeImages(cs), plan.HumanBytes(u.Images.Total), plan.HumanBytes(u.Images.BuildCacheBytes))
	fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t-\n", u.Containers, u.Running, plan.HumanBytes(u.ContainerBytes))
	fmt.Fprintf(tw, "Local Volumes\t%d\t-\t%s\t-\n", u.Volumes, plan.HumanBytes(u.VolumeBytes))
	fmt.Fprintf(tw, "Build Cache\t%d\t-\t%s\t%s\n", u.Images.BuildCache, plan.HumanBytes(u.Images.BuildCacheBytes), plan.HumanBytes(u.Images.BuildCacheBytes))
	tw.Flush()
	return 0
}

// activeImages counts the distinct images containers use.
func activeImages(cs []agent.Container) int {
	seen := map[string]bool{}
	for _, c := range cs {
		ref := c.Image
		if i := strings.LastIndexByte(ref, '@'); i >= 0 {
			ref = ref[i+1:]
		}
		seen[ref] = true
	}
	return len(seen)
}
