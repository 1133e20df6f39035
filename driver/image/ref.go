package image

import (
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Ref names a stored image the way a container's image attribute and
// Resolve take it, NAME@DIGEST, from what a person types: a recorded name
// (an image block's name, or what berth image pull recorded), NAME@DIGEST
// or a bare digest. An image the store does not hold wraps
// resource.ErrNotFound.
func (s *Store) Ref(name string) (string, error) {
	h, err := s.find(name)
	if err != nil {
		return "", err
	}
	return refOf(name, h), nil
}

func refOf(name string, h v1.Hash) string {
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if name == "" || name == h.String() {
		return h.String()
	}
	return name + "@" + h.String()
}
