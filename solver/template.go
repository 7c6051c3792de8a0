package solver

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

func (c *Config) serviceType() corev1.ServiceType {
	if c.ServiceType != "" {
		return c.ServiceType
	}
	return corev1.ServiceTypeClusterIP
}

// applyPodTemplate merges the issuer's podTemplate into the solver pod the
// way cert-manager does: labels, annotations and nodeSelector are merged,
// tolerations and imagePullSecrets appended, affinity, priorityClassName,
// serviceAccountName and the given securityContext fields replaced, and
// resources merged into the container's. The solver's own labels win, so
// the Service still selects the pod.
func (c *Config) applyPodTemplate(pod *corev1.Pod) {
	t := c.PodTemplate
	if t == nil {
		return
	}
	maps.Copy(pod.Labels, t.Labels)
	maps.Copy(pod.Labels, c.labels())
	// The solver's own annotations (its key authorizations) win.
	keep := maps.Clone(pod.Annotations)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	maps.Copy(pod.Annotations, t.Annotations)
	maps.Copy(pod.Annotations, keep)

	spec := &pod.Spec
	if len(t.Spec.NodeSelector) > 0 {
		if spec.NodeSelector == nil {
			spec.NodeSelector = map[string]string{}
		}
		maps.Copy(spec.NodeSelector, t.Spec.NodeSelector)
	}
	spec.Tolerations = append(spec.Tolerations, t.Spec.Tolerations...)
	if t.Spec.Affinity != nil {
		spec.Affinity = t.Spec.Affinity.DeepCopy()
	}
	if t.Spec.PriorityClassName != "" {
		spec.PriorityClassName = t.Spec.PriorityClassName
	}
	if t.Spec.ServiceAccountName != "" {
		spec.ServiceAccountName = t.Spec.ServiceAccountName
	}
	spec.ImagePullSecrets = append(spec.ImagePullSecrets, t.Spec.ImagePullSecrets...)
	if sc := t.Spec.SecurityContext; sc != nil {
		// cert-manager replaces the whole pod security context; keeping
		// the restricted defaults for fields the template leaves out keeps
		// the pod admissible under Pod Security "restricted".
		if spec.SecurityContext == nil {
			spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		psc := spec.SecurityContext
		if sc.SELinuxOptions != nil {
			psc.SELinuxOptions = sc.SELinuxOptions
		}
		if sc.RunAsUser != nil {
			psc.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			psc.RunAsGroup = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			psc.RunAsNonRoot = sc.RunAsNonRoot
		}
		if sc.SupplementalGroups != nil {
			psc.SupplementalGroups = sc.SupplementalGroups
		}
		if sc.FSGroup != nil {
			psc.FSGroup = sc.FSGroup
		}
		if sc.Sysctls != nil {
			psc.Sysctls = sc.Sysctls
		}
		if sc.FSGroupChangePolicy != nil {
			psc.FSGroupChangePolicy = sc.FSGroupChangePolicy
		}
		if sc.SeccompProfile != nil {
			psc.SeccompProfile = sc.SeccompProfile
		}
	}
	if r := t.Spec.Resources; r != nil && len(spec.Containers) > 0 {
		res := &spec.Containers[0].Resources
		if len(r.Requests) > 0 {
			if res.Requests == nil {
				res.Requests = corev1.ResourceList{}
			}
			maps.Copy(res.Requests, r.Requests)
		}
		if len(r.Limits) > 0 {
			if res.Limits == nil {
				res.Limits = corev1.ResourceList{}
			}
			maps.Copy(res.Limits, r.Limits)
		}
	}
}

// applyIngressTemplate merges the issuer's ingressTemplate labels and
// annotations into the solver Ingress; the solver's own labels and class
// annotation win.
func (c *Config) applyIngressTemplate(ing *networkingv1.Ingress) {
	t := c.IngressTemplate
	if t == nil {
		return
	}
	maps.Copy(ing.Labels, t.Labels)
	maps.Copy(ing.Labels, c.labels())
	keep := maps.Clone(ing.Annotations)
	maps.Copy(ing.Annotations, t.Annotations)
	maps.Copy(ing.Annotations, keep)
}
