package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"
)

// outputFlags is -o. json, yaml and name print Kubernetes objects through
// cli-runtime's printers (genericclioptions.PrintFlags), as kubectl does;
// "" is the command's own table or text, and wide its wider table.
type outputFlags struct {
	print *genericclioptions.PrintFlags
	// formats are the values -o accepts.
	formats []string
}

// newOutputFlags accepts formats (the first is the default).
func newOutputFlags(formats ...string) *outputFlags {
	return &outputFlags{print: genericclioptions.NewPrintFlags("").WithDefaultOutput(formats[0]), formats: formats}
}

// addFlag adds -o, --output and completes its values.
func (o *outputFlags) addFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVarP(o.print.OutputFormat, "output", "o", *o.print.OutputFormat, usage)
	var values []cobra.Completion
	for _, f := range o.formats {
		if f != "" {
			values = append(values, f)
		}
	}
	mustRegister(cmd, "output", fixedCompletions(values...))
}

// Format is the -o value.
func (o *outputFlags) Format() string { return *o.print.OutputFormat }

// set sets -o, for tests and callers without flags.
func (o *outputFlags) set(format string) *outputFlags {
	*o.print.OutputFormat = format
	return o
}

// validate whitelists -o.
func (o *outputFlags) validate() error { return validateOutput(o.Format(), o.formats...) }

func validateOutput(o string, allowed ...string) error {
	if slices.Contains(allowed, o) {
		return nil
	}
	return fmt.Errorf("unsupported output format %q: use one of %q", o, allowed)
}

// table reports whether -o asks for the command's table (or text).
func (o *outputFlags) table() bool { return o.Format() == "" || o.Format() == "wide" }

// wide reports -o wide.
func (o *outputFlags) wide() bool { return o.Format() == "wide" }

// printList writes objs as kubectl get does: with json or yaml one v1
// List, with name one KIND.GROUP/NAME line each.
func (o *outputFlags) printList(w io.Writer, objs any) error {
	list, err := toList(objs)
	if err != nil {
		return err
	}
	p, err := o.print.ToPrinter()
	if err != nil {
		return err
	}
	return p.PrintObj(list, w)
}

// printDocuments writes objs as kubectl create --dry-run does: yaml as
// documents, json as one v1 List, name one line each.
func (o *outputFlags) printDocuments(w io.Writer, objs any) error {
	list, err := toList(objs)
	if err != nil {
		return err
	}
	if o.Format() != "yaml" {
		return o.printList(w, list)
	}
	p, err := o.print.ToPrinter()
	if err != nil {
		return err
	}
	for i := range list.Items {
		// One printer for all: it writes the "---" between documents.
		if err := p.PrintObj(&list.Items[i], w); err != nil {
			return err
		}
	}
	return nil
}

// toList turns a slice of objects (typed, with apiVersion and kind, as
// the store and the libraries return them) into the unstructured List
// the printers take.
func toList(objs any) (*unstructured.UnstructuredList, error) {
	if l, ok := objs.(*unstructured.UnstructuredList); ok {
		return l, nil
	}
	b, err := json.Marshal(objs)
	if err != nil {
		return nil, err
	}
	var items []map[string]any
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("print: %w", err)
	}
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
	for _, it := range items {
		list.Items = append(list.Items, unstructured.Unstructured{Object: it})
	}
	return list, nil
}

// printObject writes v as json or yaml without cli-runtime's printers:
// for values that are not Kubernetes objects (the version, a CA's
// profiles), as kubectl version -o does, and for status's Certificates,
// documents kept in ConfigMaps rather than served objects: through
// toList their json keys would come sorted instead of in field order.
func printObject(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", format)
}

// list wraps items the way kubectl prints several objects, for
// printObject (status -o json|yaml).
func list[T any](items []T) map[string]any {
	if items == nil {
		items = []T{}
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
}

// age renders a timestamp as kubectl's AGE column does.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}
