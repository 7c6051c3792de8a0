package bench

import (
	"os"
	"testing"
)

func TestProcCPU(t *testing.T) {
	for range 200_000 { // burn a little CPU so it is not zero
		_ = os.Getpid()
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Errorf("own CPU = %v, want > 0", cpu)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("no error for a missing process")
	}
}
