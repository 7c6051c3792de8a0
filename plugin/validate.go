package plugin

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// validateConnectTo checks a --connect-to HOST:PORT.
func validateConnectTo(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("--connect-to %q: want HOST:PORT, like 203.0.113.10:80", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--connect-to %q: port %q is not a number from 1 to 65535", v, port)
	}
	return nil
}

// imageRef is a container image reference as the distribution/reference
// grammar writes it: [registry[:port]/]path[:tag][@digest].
var imageRef = func() *regexp.Regexp {
	label := `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domain := label + `(?:\.` + label + `)*(?::[0-9]+)?`
	component := `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	name := `(?:` + domain + `/)?` + component + `(?:/` + component + `)*`
	tag := `:[\w][\w.-]{0,127}`
	digest := `@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	return regexp.MustCompile(`^` + name + `(?:` + tag + `)?(?:` + digest + `)?$`)
}()

// validateImage checks an image reference before a pod is created with it.
func validateImage(flag, v string) error {
	if len(v) > 255 || !imageRef.MatchString(v) {
		return fmt.Errorf("%s %q is not an image reference (like busybox:1.37 or registry.example.com/mirror/busybox:1.37)", flag, v)
	}
	return nil
}

// validateIngressClass checks an ingress class name: an IngressClass
// object's name, so a DNS subdomain.
func validateIngressClass(v string) error {
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return fmt.Errorf("--ingress-class %q: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// validateGateway checks a --gateway [NAMESPACE/]NAME.
func validateGateway(v string) error {
	ns, name, hasNS := strings.Cut(v, "/")
	if !hasNS {
		ns, name = "", v
	}
	if hasNS {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--gateway %q: namespace %q: %s", v, ns, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("--gateway %q: want [NAMESPACE/]NAME of a Gateway: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// gatewayRef is the parentRef a valid --gateway names.
func gatewayRef(v string) gatewayv1.ParentReference {
	ns, name, hasNS := strings.Cut(v, "/")
	if !hasNS {
		return gatewayv1.ParentReference{Name: gatewayv1.ObjectName(v)}
	}
	namespace := gatewayv1.Namespace(ns)
	return gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name), Namespace: &namespace}
}

// validateCABundle checks that a --ca-bundle holds at least one PEM
// certificate and nothing unreadable.
func validateCABundle(file string, data []byte) error {
	found := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			// Never echo the block: it might be a key given by mistake.
			what := fmt.Sprintf("a %q block", b.Type)
			if strings.Contains(b.Type, "PRIVATE") {
				what = "a private key"
			}
			return fmt.Errorf("--ca-bundle %s: block %d is %s; want only CERTIFICATE blocks", file, found+1, what)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("--ca-bundle %s: certificate %d: %v", file, found+1, err)
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("--ca-bundle %s: no PEM certificate in it", file)
	}
	return nil
}

// validateSecretKeyRef checks NAME or NAME/KEY naming a key of a Secret.
func validateSecretKeyRef(flag, v string) error {
	name, key, hasKey := strings.Cut(v, "/")
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("%s %q: secret name %q: %s", flag, v, name, strings.Join(errs, "; "))
	}
	if hasKey {
		if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
			return fmt.Errorf("%s %q: key %q: %s", flag, v, key, strings.Join(errs, "; "))
		}
	}
	return nil
}
