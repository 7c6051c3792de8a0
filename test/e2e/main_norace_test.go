//go:build !race

package e2e

const raceEnabled = false

func buildRace(repo, tmpBin string) error { return nil }
