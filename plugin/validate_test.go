package plugin

import (
	"strings"
	"testing"
)

func TestValidateHelpers(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" for valid
	}{
		{"connect-to ok", validateConnectTo("203.0.113.10:80"), ""},
		{"connect-to v6", validateConnectTo("[2001:db8::1]:8080"), ""},
		{"connect-to no port", validateConnectTo("lb"), "want HOST:PORT"},
		{"connect-to no host", validateConnectTo(":80"), "want HOST:PORT"},
		{"connect-to port name", validateConnectTo("lb:http"), "not a number"},
		{"connect-to port 0", validateConnectTo("lb:0"), "not a number from 1 to 65535"},
		{"image short", validateImage("--solver-image", "busybox"), ""},
		{"image tag", validateImage("--solver-image", "busybox:1.37"), ""},
		{"image registry", validateImage("--solver-image", "registry.example.com:5000/mirror/busybox:1.37-musl"), ""},
		{"image digest", validateImage("--solver-image", "busybox@sha256:"+strings.Repeat("ab", 32)), ""},
		{"image space", validateImage("--solver-image", "Bad Image"), "is not an image reference"},
		{"image upper path", validateImage("--solver-image", "example.com/BusyBox"), "is not an image reference"},
		{"image empty tag", validateImage("--solver-image", "busybox:"), "is not an image reference"},
		{"class ok", validateIngressClass("nginx-internal"), ""},
		{"class bad", validateIngressClass("Bad Class"), `--ingress-class "Bad Class"`},
		{"secret ref", validateSecretKeyRef("--f", "eab/hmac"), ""},
		{"secret ref name", validateSecretKeyRef("--f", "Bad"), `secret name "Bad"`},
		{"secret ref key", validateSecretKeyRef("--f", "eab/a/b"), `key "a/b"`},
		{"bundle empty", validateCABundle("f", []byte("nothing")), "no PEM certificate"},
		{"bundle key", validateCABundle("f", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")), "block 1 is a private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.want == "" && tt.err != nil:
				t.Errorf("unexpected %v", tt.err)
			case tt.want != "" && (tt.err == nil || !strings.Contains(tt.err.Error(), tt.want)):
				t.Errorf("got %v, want %q", tt.err, tt.want)
			}
			if tt.err != nil && strings.Contains(tt.err.Error(), "PRIVATE KEY") {
				t.Errorf("message names key material: %v", tt.err)
			}
		})
	}
}
