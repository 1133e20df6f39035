package build

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Changes is the image config that Dockerfile instructions make, for
// berth image import -c (docker import --change): CMD, ENTRYPOINT, ENV,
// EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK and
// SHELL, applied in order to an empty config.
func Changes(changes []string) (*v1.Config, error) {
	st := &stage{cfg: &v1.ConfigFile{}, args: newVars()}
	r := &run{}
	for _, c := range changes {
		res, err := parser.Parse(strings.NewReader(c + "\n"))
		if err != nil {
			return nil, fmt.Errorf("change %q: %w", c, err)
		}
		if len(res.AST.Children) != 1 {
			return nil, fmt.Errorf("change %q: want one instruction", c)
		}
		cmd, err := instructions.ParseCommand(res.AST.Children[0])
		if err != nil {
			return nil, fmt.Errorf("change %q: %w", c, err)
		}
		switch cmd.(type) {
		case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.ArgCommand, *instructions.OnbuildCommand:
			return nil, fmt.Errorf("change %q: %s cannot be applied to an imported image", c, strings.ToUpper(cmd.Name()))
		}
		lex := shell.NewLex(res.EscapeToken)
		env := st.env()
		expand := func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, env)
			return s, err
		}
		if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
			if err := e.Expand(expand); err != nil {
				return nil, fmt.Errorf("change %q: %w", c, err)
			}
		}
		if err := r.configure(st, cmd, expand); err != nil {
			return nil, fmt.Errorf("change %q: %w", c, err)
		}
		if _, ok := cmd.(*instructions.CmdCommand); ok {
			st.cmdSet = true
		}
	}
	return &st.cfg.Config, nil
}
