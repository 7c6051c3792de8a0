package simnode

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// objectSource gives the ConfigMaps, Secrets and Services a pod's
// environment and volumes refer to. The kubelet reads them from its informer
// caches; tests use maps.
type objectSource interface {
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
	Secret(namespace, name string) (*corev1.Secret, error)
	Services(namespace string) ([]*corev1.Service, error)
}

// containerEnv builds a container's environment in the kubelet's order:
// service links, then envFrom, then env, each later one overriding and each
// value able to refer to earlier ones with $(VAR). Errors are the kubelet's
// CreateContainerConfigError messages.
func containerEnv(pod *corev1.Pod, c *corev1.Container, src objectSource, nodeName, hostIP string) (map[string]string, []string, error) {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}

	if err := serviceLinks(pod, src, set); err != nil {
		return nil, nil, err
	}

	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := src.ConfigMap(pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, nil, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := src.Secret(pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.SecretRef.Optional) {
					continue
				}
				return nil, nil, fmt.Errorf("secret %q not found", from.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}

	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandVars(e.Value, func(n string) (string, bool) {
				v, ok := env[n]
				return v, ok
			}))
			continue
		}
		v, ok, err := envValueFrom(pod, c, e.ValueFrom, src, nodeName, hostIP)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			set(e.Name, v)
		}
	}
	return env, order, nil
}

// envValueFrom resolves one valueFrom. ok is false for a missing optional
// key, which the kubelet leaves out.
func envValueFrom(pod *corev1.Pod, c *corev1.Container, from *corev1.EnvVarSource, src objectSource, nodeName, hostIP string) (string, bool, error) {
	switch {
	case from.FieldRef != nil:
		v, err := podField(pod, from.FieldRef.FieldPath, nodeName, hostIP)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		return resourceField(c, from.ResourceFieldRef), true, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := src.ConfigMap(pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q not found", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if isTrue(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := src.Secret(pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q not found", ref.Name)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if isTrue(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), true, nil
	}
	return "", false, nil
}

// podField resolves a downward API fieldPath for env vars and volumes.
func podField(pod *corev1.Pod, fieldPath, nodeName, hostIP string) (string, error) {
	if k, ok := subscript(fieldPath, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(fieldPath, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return nodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	case "status.podIP", "status.podIPs":
		return pod.Status.PodIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", fieldPath)
}

func subscript(fieldPath, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(fieldPath, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// formatMap renders labels or annotations as the downward API does.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(m[k]))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// resourceField returns a container's limit or request in units of the
// divisor (default 1), rounding up as the kubelet does. Unset limits fall
// back to the node's capacity.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) string {
	name, isLimit := strings.CutPrefix(ref.Resource, "limits.")
	if !isLimit {
		name = strings.TrimPrefix(ref.Resource, "requests.")
	}
	list := c.Resources.Requests
	if isLimit {
		list = c.Resources.Limits
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		q = nodeCapacity()[corev1.ResourceName(name)]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		if name == "cpu" {
			return strconv.FormatInt(q.MilliValue()/1000+boolInt(q.MilliValue()%1000 != 0), 10)
		}
		return strconv.FormatInt(q.Value(), 10)
	}
	if name == "cpu" {
		d := divisor.MilliValue()
		return strconv.FormatInt((q.MilliValue()+d-1)/d, 10)
	}
	d := divisor.Value()
	return strconv.FormatInt((q.Value()+d-1)/d, 10)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func isTrue(b *bool) bool { return b != nil && *b }

// serviceLinks adds the docker-links style variables the kubelet injects
// for services in the pod's namespace (when enableServiceLinks) and always
// for the master "kubernetes" service.
func serviceLinks(pod *corev1.Pod, src objectSource, set func(k, v string)) error {
	var svcs []*corev1.Service
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		s, err := src.Services(pod.Namespace)
		if err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		svcs = append(svcs, s...)
	}
	if pod.Namespace != "default" || len(svcs) == 0 {
		def, err := src.Services("default")
		if err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		for _, s := range def {
			if s.Name == "kubernetes" {
				svcs = append(svcs, s)
			}
		}
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	for _, s := range svcs {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		set(prefix+"_SERVICE_HOST", ip)
		set(prefix+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				set(prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port)))
			}
		}
		first := s.Spec.Ports[0]
		set(prefix+"_PORT", fmt.Sprintf("%s://%s:%d", strings.ToLower(string(first.Protocol)), ip, first.Port))
		for _, p := range s.Spec.Ports {
			proto := string(p.Protocol)
			base := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, proto)
			set(base, fmt.Sprintf("%s://%s:%d", strings.ToLower(proto), ip, p.Port))
			set(base+"_PROTO", strings.ToLower(proto))
			set(base+"_PORT", strconv.Itoa(int(p.Port)))
			set(base+"_ADDR", ip)
		}
	}
	return nil
}
