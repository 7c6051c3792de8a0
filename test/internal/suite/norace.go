//go:build !race

package suite

// RaceEnabled: the tests run without -race.
const RaceEnabled = false

func buildRace(repo, tmpBin string) error { return nil }
