package acme

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	xacme "golang.org/x/crypto/acme"
)

// Profile is an issuance profile the CA offers.
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Profiles lists the CA's profiles, sorted by name; empty if it has none.
func Profiles(ctx context.Context, c *xacme.Client) ([]Profile, error) {
	dir, err := c.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", Explain(err))
	}
	out := make([]Profile, 0, len(dir.Profiles))
	for name, desc := range dir.Profiles {
		out = append(out, Profile{Name: string(name), Description: desc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrNoProfiles is a profile asked of a CA whose directory lists none in
// its meta (draft-aaron-acme-profiles): such a CA ignores the order's
// profile field (step-ca does) and would issue something else silently.
var ErrNoProfiles = errors.New("the CA offers no profiles (its directory lists none)")

// ErrUnknownProfile is a profile the CA's directory does not list.
var ErrUnknownProfile = errors.New("the CA does not offer the profile")

// checkProfile says whether dir offers profile name; "" always passes.
func checkProfile(dir xacme.Directory, name string) error {
	if name == "" {
		return nil
	}
	if len(dir.Profiles) == 0 {
		return fmt.Errorf("profile %q: %w", name, ErrNoProfiles)
	}
	if _, ok := dir.Profiles[xacme.ProfileName(name)]; !ok {
		names := make([]string, 0, len(dir.Profiles))
		for n := range dir.Profiles {
			names = append(names, string(n))
		}
		sort.Strings(names)
		return fmt.Errorf("%w %q (it offers %s)", ErrUnknownProfile, name, strings.Join(names, ", "))
	}
	return nil
}

// CheckProfile says whether the CA offers profile name, before anything
// is ordered with it; "" always passes.
func CheckProfile(ctx context.Context, c *xacme.Client, name string) error {
	if name == "" {
		return nil
	}
	dir, err := c.Discover(ctx)
	if err != nil {
		return err
	}
	return checkProfile(dir, name)
}
