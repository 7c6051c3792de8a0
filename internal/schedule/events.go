package schedule

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
	"github.com/kubectl-acme/kubectl-acme/internal/kube"
	"github.com/kubectl-acme/kubectl-acme/internal/store"
)

// ReasonRenewalFailed is the reason of the Warning Event a scheduled
// renewal leaves on a Certificate's ConfigMap when it fails.
const ReasonRenewalFailed = "RenewalFailed"

// maxMessage keeps an Event's message within what the API server accepts
// (it truncates at 1 KiB for events.k8s.io; core Events are not checked,
// but a long ACME problem is no more readable past this).
const maxMessage = 1024

// RecordFailure leaves a Warning Event on cert's ConfigMap (its state
// object, docs/storage.md), so `kubectl get events` and event-based
// alerting see a failed scheduled renewal and why.
func RecordFailure(ctx context.Context, c kubernetes.Interface, cert *certmanager.Certificate, failure error) error {
	ns, name := cert.Namespace, store.CertificateConfigMapName(cert.Name)
	ref := corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name}
	// The UID ties the Event to this ConfigMap in kubectl describe; the
	// Event is worth recording without it.
	if cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		ref.UID, ref.ResourceVersion = cm.UID, cm.ResourceVersion
	}
	msg := fmt.Sprintf("renewal of certificate %s failed: %v", cert.Name, failure)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	now := metav1.Time{Time: time.Now()}
	host, _ := os.Hostname()
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: name + ".", Namespace: ns, Labels: map[string]string{store.LabelManagedBy: store.ManagedBy}},
		InvolvedObject:      ref,
		Reason:              ReasonRenewalFailed,
		Message:             msg,
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: "kubectl-acme", Host: host},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kubectl-acme.io/renew",
		ReportingInstance:   host,
		Action:              "Renew",
	}
	if _, err := c.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return kube.Describe(err, "create", "events", ns)
	}
	return nil
}
