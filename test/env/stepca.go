package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// step-ca is the second ACME server: smallstep's CA (hack/stepca), so the
// end-to-end tests depend on no quirk of Pebble's. Its configuration is
// the ca.json that `step ca init` writes (smallstep/certificates
// authority/config/config.go, Config and AuthConfig), with our own PKI
// instead of `step ca init`'s, which needs the step CLI.
// stepCAProvisioner names the ACME provisioner; step-ca serves its
// directory at /acme/<name>/directory (acme/api/handler.go, Route).
const stepCAProvisioner = "acme"

// StepCAMaxLifetime is step-ca's default maximum certificate lifetime
// (authority/config/config.go, GlobalProvisionerClaims MaxTLSDur, the
// provisioner claim maxTLSCertDuration); the environment keeps it, so a longer notAfter is
// refused at finalize as it would be by a default step-ca install.
const StepCAMaxLifetime = 24 * time.Hour

// stepCAConfig is the part of step-ca's ca.json the environment sets.
type stepCAConfig struct {
	Root     string   `json:"root"`
	Crt      string   `json:"crt"`
	Key      string   `json:"key"`
	Address  string   `json:"address"`
	DNSNames []string `json:"dnsNames"`
	Logger   struct {
		Format string `json:"format"`
	} `json:"logger"`
	DB struct {
		Type       string `json:"type"`
		DataSource string `json:"dataSource"`
	} `json:"db"`
	Authority struct {
		Provisioners []stepCAProvisionerConfig `json:"provisioners"`
	} `json:"authority"`
}

type stepCAProvisionerConfig struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// writeStepCAPKI writes step-ca's root and intermediate, as `step ca init`
// makes them (a root and an intermediate that signs the leaves; step-ca
// also signs its own HTTPS certificate with the intermediate). The key is
// unencrypted, so step-ca needs no --password-file.
func writeStepCAPKI(dir string) (root, crt, key string, err error) {
	root, crt, key = filepath.Join(dir, "root_ca.crt"), filepath.Join(dir, "intermediate_ca.crt"), filepath.Join(dir, "intermediate_ca_key")
	rootCA, err := newCA("testenv step-ca root")
	if err != nil {
		return "", "", "", err
	}
	if err := os.WriteFile(root, rootCA.pem, 0o644); err != nil {
		return "", "", "", fmt.Errorf("write step-ca root: %w", err)
	}
	ikey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("generate step-ca intermediate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "testenv step-ca intermediate"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, rootCA.cert, ikey.Public(), rootCA.key)
	if err != nil {
		return "", "", "", fmt.Errorf("create step-ca intermediate: %w", err)
	}
	if err := os.WriteFile(crt, pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return "", "", "", fmt.Errorf("write step-ca intermediate: %w", err)
	}
	if err := writeECKey(key, ikey); err != nil {
		return "", "", "", err
	}
	return root, crt, key, nil
}

// startStepCA runs step-ca with one ACME provisioner on loopback. Its
// http-01 validation goes to the ingress's port (--acme-http-port, which
// step-ca only takes with --insecure: commands/app.go) and it resolves
// names with pebble-challtestsrv (--resolver), as Pebble does.
func (e *Env) startStepCA(ctx context.Context, o Options, ingressPort int) error {
	dir := filepath.Join(e.Dir, stepCADir)
	root, crt, key, err := writeStepCAPKI(dir)
	if err != nil {
		return err
	}
	port, err := e.freePort()
	if err != nil {
		return err
	}
	var cfg stepCAConfig
	cfg.Root, cfg.Crt, cfg.Key = root, crt, key
	cfg.Address = fmt.Sprintf("127.0.0.1:%d", port)
	// The names of step-ca's own HTTPS certificate.
	cfg.DNSNames = []string{"127.0.0.1", "localhost"}
	cfg.Logger.Format = "text"
	// bbolt: one file, no background compaction (nosql's BBoltDriver).
	cfg.DB.Type, cfg.DB.DataSource = "bbolt", filepath.Join(dir, "db")
	cfg.Authority.Provisioners = []stepCAProvisionerConfig{{Type: "ACME", Name: stepCAProvisioner}}
	data, err := json.MarshalIndent(&cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode step-ca config: %w", err)
	}
	cfgFile := filepath.Join(dir, "ca.json")
	if err := os.WriteFile(cfgFile, data, 0o644); err != nil {
		return fmt.Errorf("write step-ca config: %w", err)
	}
	args := []string{
		cfgFile,
		"--resolver=" + e.ChallTestSrvDNS,
		fmt.Sprintf("--acme-http-port=%d", ingressPort),
		"--insecure",
	}
	base := "https://" + cfg.Address
	directory := base + "/acme/" + stepCAProvisioner + "/directory"
	httpc, err := tlsClient(root)
	if err != nil {
		return err
	}
	// step-ca reads $STEPPATH (default ~/.step) for contexts only when
	// asked to; a fresh one keeps the user's away from it regardless.
	env := []string{"STEPPATH=" + filepath.Join(dir, "steppath"), "HOME=" + dir}
	err = e.launch(ctx, o, "step-ca", args, env, 30*time.Second, func(ctx context.Context) error {
		body, err := get(ctx, httpc, base+"/health", "")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"ok"`) {
			return fmt.Errorf("step-ca health: %s", body)
		}
		_, err = get(ctx, httpc, directory, "")
		return err
	})
	if err != nil {
		return err
	}
	e.StepCAServer, e.StepCACABundle, e.StepCARoots = directory, root, root
	return nil
}
