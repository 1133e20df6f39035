package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// pathComponent is one component of a repository's path, as Docker's
// reference grammar has it.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// NormalizeName checks a name berth build -t, berth image tag, pull, load
// and import record by Docker's reference rules (a lowercase repository,
// an optional registry, a valid tag) and returns it with its tag explicit:
// "app" is "app:latest", as docker has it.
func NormalizeName(n string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("invalid image name %q: %s (want NAME or NAME:TAG, NAME of lowercase letters, digits and separators)", n, why)
	}
	if n == "" {
		return bad("empty")
	}
	if strings.ContainsRune(n, '@') {
		return bad("a digest cannot be a name")
	}
	t, err := name.NewTag(n, name.WithDefaultTag("latest"))
	if err != nil {
		return bad(err.Error())
	}
	base := n
	if hasTag(n) {
		base = n[:strings.LastIndexByte(n, ':')]
	}
	comps := strings.Split(base, "/")
	if len(comps) > 1 && (strings.ContainsAny(comps[0], ".:") || comps[0] == "localhost") {
		comps = comps[1:] // the registry, which NewTag checked
	}
	for _, c := range comps {
		if !pathComponent.MatchString(c) {
			return bad(fmt.Sprintf("repository component %q", c))
		}
	}
	return base + ":" + t.TagStr(), nil
}
