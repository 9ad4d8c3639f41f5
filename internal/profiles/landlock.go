package profiles

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/ward-runtime/ward/internal/landlock"
)

// LandlockDefault names the Landlock profile hardened containers get when
// the policy names none.
const LandlockDefault = "baseline"

//go:embed landlock/*.yaml
var landlockFS embed.FS

// LandlockProfiles returns the Landlock profiles ward ships, resolved
// (extends applied) and validated, in name order. It fails only for a
// binary built with a broken profile, which the tests refuse.
func LandlockProfiles() ([]landlock.Profile, error) {
	names, err := fs.Glob(landlockFS, "landlock/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("listing landlock profiles: %w", err)
	}
	raw := map[string]landlock.Profile{}
	for _, n := range names {
		data, err := landlockFS.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
		p, err := ParseLandlockProfile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		raw[p.Name] = p
	}
	out := make([]landlock.Profile, 0, len(raw))
	for _, p := range raw {
		if p.Extends != "" {
			base, ok := raw[p.Extends]
			if !ok || base.Extends != "" {
				return nil, fmt.Errorf("landlock profile %q: extends %q, which is not a base profile", p.Name, p.Extends)
			}
			p = p.Extend(base)
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("landlock profile %q: %w", p.Name, err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b landlock.Profile) int {
		return cmpString(a.Name, b.Name)
	})
	return out, nil
}

// ParseLandlockProfile decodes one profile document, unknown fields
// refused. It does not resolve extends or validate.
func ParseLandlockProfile(data []byte) (landlock.Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p landlock.Profile
	if err := dec.Decode(&p); err != nil {
		return landlock.Profile{}, fmt.Errorf("decoding landlock profile: %w", err)
	}
	return p, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
