//go:build race

package suite

import (
	"os"
	"os/exec"
)

// RaceEnabled: the tests run with -race, so Main builds the plugin with
// -race too, and a data race in any run can fail the suite.
const RaceEnabled = true

// buildRace rebuilds the plugin in tmpBin with -race.
func buildRace(repo, tmpBin string) error {
	build := exec.Command("go", "build", "-race", "-o", tmpBin+"/", "./cmd/kubectl-acme")
	build.Dir = repo
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}
