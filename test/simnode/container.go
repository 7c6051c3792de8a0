package simnode

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// imageConfig is the part of an OCI image config that decides how a
// container's process starts.
type imageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
}

// busyboxImage is the config of docker.io/library/busybox: no ENTRYPOINT,
// CMD ["sh"], runs as root.
func busyboxImage() imageConfig {
	return imageConfig{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
}

// imageUser is an entry of an image's /etc/passwd.
type imageUser struct {
	name     string
	uid, gid uint32
	home     string
}

// busyboxUsers is the busybox image's /etc/passwd.
func busyboxUsers() []imageUser {
	return []imageUser{
		{"root", 0, 0, "/root"},
		{"daemon", 1, 1, "/usr/sbin"},
		{"bin", 2, 2, "/bin"},
		{"sys", 3, 3, "/dev"},
		{"sync", 4, 100, "/bin"},
		{"mail", 8, 8, "/var/spool/mail"},
		{"www-data", 33, 33, "/var/www"},
		{"operator", 37, 37, "/var"},
		{"nobody", 65534, 65534, "/home"},
	}
}

// imageRepo returns the last path element of an image reference's
// repository, without registry, tag or digest: "busybox" for
// "docker.io/library/busybox:1.36@sha256:...".
func imageRepo(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return path.Base(ref)
}

// errCannotRun is the reason a container's image cannot be run here; the
// kubelet reports it the way it reports an image it cannot pull.
type errCannotRun struct {
	image, why string
}

func (e *errCannotRun) Error() string {
	return fmt.Sprintf("simnode cannot run image %q: %s", e.image, e.why)
}

// resolveImage decides whether simnode can run c's image with busybox, and
// with which image config. Busybox images run as themselves; any other image
// runs only if its command is a busybox applet, since then its own
// ENTRYPOINT and CMD do not matter.
func resolveImage(c *corev1.Container, applets map[string]bool) (imageConfig, error) {
	if imageRepo(c.Image) == "busybox" {
		return busyboxImage(), nil
	}
	if len(c.Command) == 0 {
		return imageConfig{}, &errCannotRun{image: c.Image, why: "only busybox images, or a command that is a busybox applet, can run"}
	}
	if !applets[path.Base(c.Command[0])] {
		return imageConfig{}, &errCannotRun{image: c.Image, why: fmt.Sprintf("command %q is not a busybox applet", c.Command[0])}
	}
	return busyboxImage(), nil
}

// containerArgv applies Kubernetes' rules: command replaces ENTRYPOINT and
// args replaces CMD; setting command alone drops the image's CMD. $(VAR)
// references are expanded with env.
func containerArgv(c *corev1.Container, img imageConfig, env map[string]string) []string {
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(argv, c.Command...)
		argv = append(argv, c.Args...)
	case len(c.Args) > 0:
		argv = append(argv, img.Entrypoint...)
		argv = append(argv, c.Args...)
	default:
		argv = append(argv, img.Entrypoint...)
		argv = append(argv, img.Cmd...)
	}
	for i, a := range argv {
		argv[i] = expandVars(a, func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		})
	}
	return argv
}

// expandVars implements Kubernetes' $(VAR) expansion: defined references are
// replaced, undefined ones kept verbatim, and $$ escapes a $.
func expandVars(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += end + 2
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// lookPath finds argv0 the way a container runtime does: names with a slash
// are used as they are, others are searched in the container's PATH. exists
// reports whether a path inside the container is an executable file.
func lookPath(argv0, pathEnv string, exists func(string) bool) (string, error) {
	if strings.Contains(argv0, "/") {
		p := argv0
		if !path.IsAbs(p) {
			p = "/" + p
		}
		if exists(p) {
			return p, nil
		}
		return "", fmt.Errorf("exec: %q: stat %s: no such file or directory", argv0, p)
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			continue
		}
		if p := path.Join(dir, argv0); exists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", argv0)
}

// identity is the effective user and groups of a container's process.
type identity struct {
	uid, gid uint32
	groups   []uint32
}

// containerIdentity merges pod and container security contexts as the
// kubelet does (container wins) and applies the runAsNonRoot check against
// the image user. Its errors are the kubelet's CreateContainerConfigError
// messages.
func containerIdentity(pod *corev1.Pod, c *corev1.Container, img imageConfig) (identity, error) {
	var (
		uid, gid    *int64
		nonRoot     *bool
		psc         = pod.Spec.SecurityContext
		csc         = c.SecurityContext
		podRef      = fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
		id          identity
		imageIsRoot = img.User == "" || img.User == "0" || img.User == "root"
	)
	if psc != nil {
		uid, gid, nonRoot = psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
		for _, g := range psc.SupplementalGroups {
			id.groups = append(id.groups, uint32(g))
		}
		if psc.FSGroup != nil {
			id.groups = append(id.groups, uint32(*psc.FSGroup))
		}
	}
	if csc != nil {
		if csc.RunAsUser != nil {
			uid = csc.RunAsUser
		}
		if csc.RunAsGroup != nil {
			gid = csc.RunAsGroup
		}
		if csc.RunAsNonRoot != nil {
			nonRoot = csc.RunAsNonRoot
		}
	}
	if nonRoot != nil && *nonRoot {
		switch {
		case uid != nil && *uid == 0:
			return id, fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podRef, c.Name)
		case uid == nil && imageIsRoot:
			return id, fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podRef, c.Name)
		}
	}
	if uid != nil {
		id.uid = uint32(*uid)
	}
	switch {
	case gid != nil:
		id.gid = uint32(*gid)
	case uid != nil:
		// Without runAsGroup the runtime takes the user's group from the
		// image's /etc/passwd.
		for _, u := range busyboxUsers() {
			if u.uid == id.uid {
				id.gid = u.gid
			}
		}
	}
	return id, nil
}
