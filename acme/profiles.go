package acme

import (
	"context"
	"fmt"
	"sort"

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
