package manifest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Input is one source of manifests.
type Input struct {
	Name string
	Data []byte
}

// StdinName names standard input in messages.
const StdinName = "<stdin>"

// manifestExts are the extensions read from directories, as kubectl does.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// ReadInputs reads each path: "-" is stdin (once), a file is read
// whatever its extension, and a directory contributes its .yaml, .yml and
// .json files in lexical order, and those of its subdirectories if
// recursive.
func ReadInputs(paths []string, recursive bool, stdin io.Reader) ([]Input, error) {
	var out []Input
	stdinRead := false
	for _, p := range paths {
		if p == "-" {
			if stdinRead {
				return nil, fmt.Errorf("-f -: standard input can be read only once")
			}
			stdinRead = true
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			out = append(out, Input{Name: StdinName, Data: data})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, unwrapPathError(err))
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("-f %s: %w", p, unwrapPathError(err))
			}
			out = append(out, Input{Name: p, Data: data})
			continue
		}
		files, err := dirFiles(p, recursive)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("-f %s: no .yaml, .yml or .json files in the directory%s", p, map[bool]string{false: " (use -R for subdirectories)", true: ""}[recursive])
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("-f %s: %w", f, unwrapPathError(err))
			}
			out = append(out, Input{Name: f, Data: data})
		}
	}
	return out, nil
}

func dirFiles(dir string, recursive bool) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("-f %s: %w", path, unwrapPathError(err))
		}
		if d.IsDir() {
			if path != dir && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if manifestExts[strings.ToLower(filepath.Ext(path))] {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// DecodeAll decodes every input into one Result.
func DecodeAll(inputs []Input) *Result {
	return DecodeAllWith(inputs, Options{})
}

// DecodeAllWith is DecodeAll with options.
func DecodeAllWith(inputs []Input, opts Options) *Result {
	all := &Result{}
	for _, in := range inputs {
		r := DecodeWith(in.Name, in.Data, opts)
		all.Objects = append(all.Objects, r.Objects...)
		all.Skipped = append(all.Skipped, r.Skipped...)
		all.Notes = append(all.Notes, r.Notes...)
		all.Shims = append(all.Shims, r.Shims...)
		all.Errors = append(all.Errors, r.Errors...)
	}
	return all
}

// SetNamespaces gives every namespaced object without one the namespace
// ns, and fails, as kubectl apply does, for an object in another
// namespace when ns was given explicitly (-n). It also rejects an object
// given twice.
func SetNamespaces(objs []*Object, ns string, explicit bool) Errors {
	var errs Errors
	seen := map[string]*Object{}
	for _, o := range objs {
		if o.Kind != "ClusterIssuer" {
			switch have := o.Namespace(); {
			case have == "":
				o.setNamespace(ns)
			case explicit && have != ns:
				errs = append(errs, &Error{Location: o.Location, Object: o.String(), Path: "metadata.namespace",
					Reason: fmt.Sprintf("%q does not match the namespace %q given with -n; remove one of them", have, ns)})
				continue
			}
		}
		key := o.Kind + "/" + o.Namespace() + "/" + o.Name()
		if prev, ok := seen[key]; ok {
			errs = append(errs, &Error{Location: o.Location, Object: o.String(),
				Reason: fmt.Sprintf("given twice (also in %s, %s)", prev.File, prev.Location)})
			continue
		}
		seen[key] = o
	}
	return errs
}

func (o *Object) setNamespace(ns string) {
	if o.Issuer != nil {
		o.Issuer.Namespace = ns
	} else {
		o.Certificate.Namespace = ns
	}
}
