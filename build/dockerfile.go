package build

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	path     string
	escape   rune
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	warnings []string
}

// parseDockerfile reads a Dockerfile with BuildKit's parser and refuses,
// naming the line, what berth does not build.
func parseDockerfile(path string) (*dockerfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("Dockerfile %s does not exist: create it, or name another with -f (build block: dockerfile)", path)
		}
		return nil, fmt.Errorf("Dockerfile: %w", err)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, located(path, err)
	}
	df := &dockerfile{path: path, escape: res.EscapeToken}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		df.warnings = append(df.warnings, fmt.Sprintf("%s:%d: %s", filepath.Base(path), line, w.Short))
	}
	df.stages, df.metaArgs, err = instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, located(path, err)
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM: a Dockerfile starts its first stage with FROM", path)
	}
	for _, st := range df.stages {
		if st.Platform != "" {
			return nil, fmt.Errorf("%s:%d: FROM --platform is not supported: berth builds for this host's platform", path, rangeLine(st.Location))
		}
		for _, c := range st.Commands {
			if err := supported(c); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", path, rangeLine(c.Location()), strings.ToUpper(c.Name()), err)
			}
		}
	}
	return df, nil
}

// supported refuses the instructions and flags berth does not build, so
// a Dockerfile never builds into something other than what it says.
func supported(c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.OnbuildCommand:
		return errors.New("ONBUILD is not supported by berth build")
	case *instructions.RunCommand:
		if len(c.Files) > 0 {
			return errors.New("heredocs are not supported by berth build; write the script to a file and COPY it, or use RUN with && ")
		}
		for _, f := range c.FlagsUsed {
			switch f {
			case "network":
			default:
				return fmt.Errorf("RUN --%s is not supported by berth build (RUN takes --network=none|host)", f)
			}
		}
	case *instructions.CopyCommand:
		if len(c.SourceContents) > 0 {
			return errors.New("heredocs are not supported by berth build")
		}
		if c.Parents || len(c.ExcludePatterns) > 0 {
			return errors.New("COPY --parents and --exclude are not supported by berth build")
		}
	case *instructions.AddCommand:
		if len(c.SourceContents) > 0 {
			return errors.New("heredocs are not supported by berth build")
		}
		if len(c.ExcludePatterns) > 0 || c.Checksum != "" || c.KeepGitDir != nil {
			return errors.New("ADD --exclude, --checksum and --keep-git-dir are not supported by berth build")
		}
	}
	return nil
}

// located turns a BuildKit error with a location into PATH:LINE: message.
func located(path string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 {
		line := rangeLine(le.Locations[0])
		msg := err.Error()
		// BuildKit's parse error already says its line.
		msg = strings.TrimPrefix(msg, fmt.Sprintf("dockerfile parse error on line %d: ", line))
		return fmt.Errorf("%s:%d: %s", path, line, msg)
	}
	return fmt.Errorf("%s: %w", path, err)
}

func rangeLine(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

// vars is what ARG and ENV expansion see.
type vars struct {
	keys []string
	vals map[string]string
}

func newVars() *vars { return &vars{vals: map[string]string{}} }

func (v *vars) set(k, val string) {
	if _, ok := v.vals[k]; !ok {
		v.keys = append(v.keys, k)
	}
	v.vals[k] = val
}

func (v *vars) Get(k string) (string, bool) { val, ok := v.vals[k]; return val, ok }
func (v *vars) Keys() []string              { return v.keys }

var _ shell.EnvGetter = (*vars)(nil)

// stageIndex finds a stage by name or index, as FROM and COPY --from name
// them.
func (df *dockerfile) stageIndex(name string, before int) (int, bool) {
	if i, ok := instructions.HasStage(df.stages[:before], name); ok {
		return i, true
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < before {
		return n, true
	}
	return -1, false
}

// targetIndex is the stage a build produces.
func (df *dockerfile) targetIndex(target string) (int, error) {
	if target == "" {
		return len(df.stages) - 1, nil
	}
	if i, ok := instructions.HasStage(df.stages, target); ok {
		return i, nil
	}
	var names []string
	for _, s := range df.stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return -1, fmt.Errorf("target stage %q is not in %s (its stages: %s)", target, df.path, strings.Join(names, ", "))
}
