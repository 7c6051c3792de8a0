package simnode

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// volumesDir is where, inside a pod's root, volumes live; mount paths are
// symlinks into it, so containers of one pod share a volume's contents.
const volumesDir = "/.simnode/volumes"

// sandbox is what a pod's containers share: a root directory holding the
// busybox image and the volumes, and, once the volumes are set up (the
// kubelet mounts volumes before it creates the pod sandbox), a network
// namespace and an IP. ns and ip are guarded by the pod worker's mu.
type sandbox struct {
	dir  string // holds root and logs
	root string
	ns   *netNS
	ip   string
	// written is the last payload written per volume, to skip rewrites.
	written map[string]map[string]fileProjection
}

// imageDir is a directory of an image's filesystem.
type imageDir struct {
	path string
	mode fs.FileMode
}

// busyboxImageDirs are the directories of the busybox image, plus where
// simnode keeps volumes, plus /dev/shm: the runtime mounts a tmpfs there
// in every container, mode 1777 and writable under readOnlyRootFilesystem
// (runc's default spec, libcontainer/specconv/example.go; containerd's
// sandbox shm, internal/cri/server/podsandbox/sandbox_run_linux.go).
func busyboxImageDirs() []imageDir {
	return []imageDir{
		{"bin", 0o755}, {"dev", 0o755}, {"dev/shm", 0o1777}, {"etc", 0o755}, {"home", 0o755},
		{"root", 0o700}, {"tmp", 0o1777}, {"usr", 0o755}, {"var", 0o755},
		{"var/spool/mail", 0o755}, {"var/www", 0o755}, {".simnode/volumes", 0o755},
	}
}

// populateRoot lays out the busybox image, plus the files the kubelet and
// runtime add (/etc/hosts, /etc/hostname, /etc/resolv.conf, device nodes).
func populateRoot(root, busybox string, applets []string, pod *corev1.Pod) error {
	for _, d := range busyboxImageDirs() {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		// MkdirAll honours the umask and cannot set the sticky bit.
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", d.path, err)
		}
	}
	bb := filepath.Join(root, "bin/busybox")
	if err := os.Link(busybox, bb); err != nil {
		if err := copyFile(busybox, bb, 0o755); err != nil {
			return err
		}
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("link applet %s: %w", a, err)
		}
	}
	var passwd, group strings.Builder
	for _, u := range busyboxUsers() {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:/bin/sh\n", u.name, u.uid, u.gid, u.name, u.home)
		fmt.Fprintf(&group, "%s:x:%d:\n", u.name, u.gid)
	}
	// No nameserver: resolvers then ask 127.0.0.1 inside the pod's own
	// network namespace, where nothing answers and nothing leaves.
	resolv := fmt.Sprintf("search %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", pod.Namespace)
	files := map[string]string{
		"etc/passwd":          passwd.String(),
		"etc/group":           group.String(),
		"etc/hostname":        podHostname(pod) + "\n",
		"etc/resolv.conf":     resolv,
		"dev/termination-log": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	devices := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"random", 1, 8}, {"urandom", 1, 9}}
	for _, d := range devices {
		// Best effort: a nodev WorkDir makes these unusable but harmless.
		_ = unix.Mknod(filepath.Join(root, "dev", d.name), unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
		_ = os.Chmod(filepath.Join(root, "dev", d.name), 0o666)
	}
	return nil
}

func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}

// writeHosts writes the kubelet-managed /etc/hosts once the pod has an IP.
func writeHosts(root string, pod *corev1.Pod, ip string) error {
	hosts := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		ip + "\t" + podHostname(pod) + "\n"
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("write /etc/hosts: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// mountVolume makes mountPath inside root show volume vol (or its subPath).
// Whole volumes are symlinks into volumesDir, so updates show through; a
// subPath of a configMap, secret or projected volume is copied once,
// because the kubelet's subPath bind mounts do not receive updates either.
func mountVolume(root string, m corev1.VolumeMount, vol *corev1.Volume, env map[string]string) error {
	mountPath := path.Clean("/" + m.MountPath)
	if mountPath == "/" {
		return fmt.Errorf("mount path %q: simnode cannot mount over the root", m.MountPath)
	}
	subPath := m.SubPath
	if m.SubPathExpr != "" {
		subPath = expandVars(m.SubPathExpr, func(n string) (string, bool) {
			v, ok := env[n]
			return v, ok
		})
	}
	if err := validSubPath(subPath); err != nil {
		return err
	}
	src := path.Join(volumesDir, m.Name, subPath)
	target := filepath.Join(root, mountPath)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("create parent of mount path %s: %w", mountPath, err)
	}
	hostSrc := filepath.Join(root, src)

	if subPath != "" && vol.EmptyDir == nil {
		// Snapshot: the kubelet bind-mounts the file the payload link
		// resolves to at container start.
		fi, err := os.Stat(hostSrc)
		if err != nil {
			return fmt.Errorf("subPath %q of volume %q: %w", subPath, m.Name, err)
		}
		os.RemoveAll(target)
		if fi.IsDir() {
			real, err := filepath.EvalSymlinks(hostSrc)
			if err != nil {
				return fmt.Errorf("subPath %q of volume %q: %w", subPath, m.Name, err)
			}
			return copyDir(real, target)
		}
		return copyFile(hostSrc, target, fi.Mode().Perm())
	}
	if subPath != "" {
		// The kubelet creates a missing subPath directory in an emptyDir.
		if err := os.MkdirAll(hostSrc, 0o777); err != nil {
			return fmt.Errorf("create subPath %q: %w", subPath, err)
		}
	}
	rel, err := filepath.Rel(filepath.Dir(mountPath), src)
	if err != nil {
		return fmt.Errorf("mount path %s: %w", mountPath, err)
	}
	if cur, err := os.Readlink(target); err == nil {
		if cur == rel {
			return nil
		}
		return fmt.Errorf("mount path %s: already a mount of another volume (simnode shares one root per pod)", mountPath)
	}
	if fi, err := os.Lstat(target); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mount path %s: exists in the image and is not a directory", mountPath)
		}
		// An image directory that a volume mounts over, e.g. /var/www.
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("mount path %s: %w", mountPath, err)
		}
	}
	if err := os.Symlink(rel, target); err != nil {
		return fmt.Errorf("mount %s at %s: %w", m.Name, mountPath, err)
	}
	return nil
}

func validSubPath(p string) error {
	if p == "" {
		return nil
	}
	if path.IsAbs(p) {
		return fmt.Errorf("subPath %q must be a relative path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("subPath %q must not contain '..'", p)
		}
	}
	return nil
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		return copyFile(p, out, fi.Mode().Perm())
	})
}
