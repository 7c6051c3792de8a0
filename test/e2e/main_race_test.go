//go:build race

package e2e

import (
	"os"
	"os/exec"
)

// raceEnabled: the tests run with -race, so TestMain builds the plugin
// with -race too, and a data race in any run fails the suite.
const raceEnabled = true

// buildRace rebuilds the plugin in tmpBin with -race.
func buildRace(repo, tmpBin string) error {
	build := exec.Command("go", "build", "-race", "-o", tmpBin+"/", "./cmd/kubectl-acme")
	build.Dir = repo
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}
