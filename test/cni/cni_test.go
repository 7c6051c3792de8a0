package cni

import (
	"strings"
	"testing"
)

func TestAllocateRelease(t *testing.T) {
	cfg := Config{Subnet: "127.200.0.0/30", DataDir: t.TempDir()}
	a, err := allocate(cfg, "c1", "/run/netns/a")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := allocate(cfg, "c1", "/run/netns/a"); err != nil || again != a {
		t.Errorf("a repeated ADD got %q, %v; want %q", again, err, a)
	}
	b, err := allocate(cfg, "c2", "/run/netns/b")
	if err != nil {
		t.Fatal(err)
	}
	// A /30 has two usable addresses.
	if a != "127.200.0.1" || b != "127.200.0.2" {
		t.Errorf("addresses %s, %s", a, b)
	}
	if _, err := allocate(cfg, "c3", "/run/netns/c"); err == nil || !strings.Contains(err.Error(), "no free address") {
		t.Errorf("a full subnet gave %v", err)
	}
	rec, err := Lookup(cfg.DataDir, b)
	if err != nil || rec.ContainerID != "c2" || rec.NetNS != "/run/netns/b" {
		t.Errorf("Lookup(%s) = %+v, %v", b, rec, err)
	}
	for range 2 { // DEL twice is no error
		if err := release(cfg, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := allocate(cfg, "c3", "/run/netns/c"); err != nil || c != a {
		t.Errorf("a released address was not reused: %q, %v", c, err)
	}
	recs, err := Records(cfg.DataDir)
	if err != nil || len(recs) != 2 {
		t.Errorf("Records = %+v, %v", recs, err)
	}
}

func TestSubnetMustBeLoopback(t *testing.T) {
	if _, err := allocate(Config{Subnet: "10.0.0.0/24", DataDir: t.TempDir()}, "c", "/x"); err == nil {
		t.Error("a subnet outside 127.0.0.0/8 was accepted")
	}
}
