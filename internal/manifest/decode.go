// Package manifest reads cert-manager's Issuer, ClusterIssuer and
// Certificate manifests, in cert-manager.io/v1 and in the legacy
// certmanager.k8s.io/v1alpha1 form, into kubectl-acme's api types.
//
// Decoding is strict: a field cert-manager does not know is an error, and
// so is a field cert-manager knows but kubectl-acme cannot honour (such as
// a Certificate's usages, which an ACME CA decides). Every problem is
// reported with its file, document, line and field path, and decoding goes
// on so that one run lists them all.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-acme/kubectl-acme/certmanager"
)

// API versions read.
const (
	GroupV1        = certmanager.Group
	VersionV1      = certmanager.GroupVersion
	LegacyGroup    = "certmanager.k8s.io"
	LegacyVersion  = "certmanager.k8s.io/v1alpha1"
	LegacyGroupAlt = "certmanager.io" // as some platform docs misspell it
)

// Object is one Issuer, ClusterIssuer or Certificate read from the input,
// converted to cert-manager.io/v1.
type Object struct {
	Location
	// APIVersion is the version the object was written in.
	APIVersion string
	Kind       string
	// Exactly one of Issuer (for Issuer and ClusterIssuer) and
	// Certificate is set. The namespace is as written, possibly empty.
	Issuer      *certmanager.Issuer
	Certificate *certmanager.Certificate
	// LegacySolvers are a v1alpha1 Certificate's spec.acme.config entries
	// turned into solvers with a dnsNames selector. cert-manager v0.11
	// moved this per-certificate solver choice to the Issuer's solvers;
	// MergeSolvers does the same.
	LegacySolvers []certmanager.ACMEChallengeSolver
	// From names the Ingress, Gateway or ListenerSet ("Ingress web") a
	// Certificate was made from, as cert-manager's shims would; empty for
	// objects written as such.
	From string
}

// Name is the object's metadata.name.
func (o *Object) Name() string {
	if o.Issuer != nil {
		return o.Issuer.Name
	}
	return o.Certificate.Name
}

// Namespace is the object's metadata.namespace as written.
func (o *Object) Namespace() string {
	if o.Issuer != nil {
		return o.Issuer.Namespace
	}
	return o.Certificate.Namespace
}

func (o *Object) String() string { return o.Kind + " " + o.Name() }

// Result is what Decode found.
type Result struct {
	Objects []*Object
	// Skipped describes objects of other kinds, which apply ignores.
	Skipped []string
	// Notes say what was read differently from how it was written: API
	// versions converted, legacy annotations renamed, Ingresses that ask
	// for nothing.
	Notes []string
	// Shims are the Ingresses, Gateways and ListenerSets Certificates were
	// made from.
	Shims  []*Shim
	Errors Errors
}

// Options change how manifests are read.
type Options struct {
	Shim ShimOptions
}

// Decode reads every object in data, which is YAML (one or more documents)
// or JSON (one or more values); v1 Lists are unpacked. file names the input
// in messages.
func Decode(file string, data []byte) *Result {
	return DecodeWith(file, data, Options{})
}

// DecodeWith is Decode with options.
func DecodeWith(file string, data []byte, opts Options) *Result {
	d := &decoder{file: file, res: &Result{}, opts: opts.Shim}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		d.decodeJSONStream(data)
	} else {
		d.decodeYAML(data)
	}
	sort.SliceStable(d.res.Errors, func(i, j int) bool {
		a, b := d.res.Errors[i], d.res.Errors[j]
		if a.Doc != b.Doc {
			return a.Doc < b.Doc
		}
		if a.Item != b.Item {
			return a.Item < b.Item
		}
		return a.Line < b.Line
	})
	return d.res
}

type decoder struct {
	file string
	res  *Result
	opts ShimOptions
}

// doc is one document being decoded.
type doc struct {
	d    *decoder
	loc  Location
	node *yamlv3.Node // for line numbers
	base int          // line of the document's first line, minus one
	// prefix is the path of the object inside the document (items[i]).
	prefix string
	object string
}

func (c *doc) fail(path, reason string) {
	full := path
	if c.prefix != "" {
		full = joinPath(c.prefix, path)
	}
	line := 0
	if c.node != nil {
		if l := lineOf(c.node, full); l > 0 {
			line = c.base + l
		}
	}
	c.d.res.Errors = append(c.d.res.Errors, &Error{Location: c.loc, Line: line, Object: c.object, Path: path, Reason: reason})
}

var yamlLineRE = regexp.MustCompile(`line (\d+): ([^\n]*)`)

func (d *decoder) decodeYAML(data []byte) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	start, n := 0, 0
	var cur [][]byte
	flush := func() {
		if len(cur) > 0 {
			n++
			d.decodeYAMLDoc(n, start, bytes.Join(cur, nil))
		}
		cur = nil
	}
	for i, l := range lines {
		if isSeparator(l) {
			flush()
			start = i + 1
			continue
		}
		if cur == nil {
			start = i
		}
		cur = append(cur, l)
	}
	flush()
}

// isSeparator reports whether a line starts a new YAML document.
func isSeparator(l []byte) bool {
	l = bytes.TrimRight(l, "\r\n")
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := l[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t'
}

// blank reports whether a YAML document holds only comments and space.
func blank(data []byte) bool {
	for _, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

func (d *decoder) decodeYAMLDoc(n, startLine int, data []byte) {
	if blank(data) {
		// An empty document (leading ---, trailing ---) is no object.
		return
	}
	c := &doc{d: d, loc: Location{File: d.file, Doc: n, Item: -1}, base: startLine}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		// libyaml leaves out the line when it is the document's first.
		msg := err.Error()
		line := startLine + 1
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			l, _ := strconv.Atoi(m[1])
			// At the end of input libyaml may count one line too many.
			last := len(bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")))
			line, msg = startLine+min(l, last), m[2]
		} else {
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, "error converting YAML to JSON: "), "yaml: ")
		}
		d.res.Errors = append(d.res.Errors, &Error{Location: c.loc, Line: line, Reason: "YAML syntax error: " + msg})
		return
	}
	var node yamlv3.Node
	if yamlv3.Unmarshal(data, &node) == nil {
		c.node = &node
	}
	c.decodeObject(js)
}

func (d *decoder) decodeJSONStream(data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		var raw json.RawMessage
		before := dec.InputOffset()
		err := dec.Decode(&raw)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			loc := Location{File: d.file, Doc: n, Item: -1}
			line := 0
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line = lineAt(data, int(se.Offset))
			}
			d.res.Errors = append(d.res.Errors, &Error{Location: loc, Line: line, Reason: "JSON syntax error: " + err.Error()})
			return
		}
		// The value starts after any white space following the previous one.
		off := int(before)
		for off < len(data) && strings.ContainsRune(" \t\r\n", rune(data[off])) {
			off++
		}
		c := &doc{d: d, loc: Location{File: d.file, Doc: n, Item: -1}, base: lineAt(data, off) - 1}
		var node yamlv3.Node
		if yamlv3.Unmarshal(raw, &node) == nil {
			c.node = &node
		}
		c.decodeObject(raw)
	}
}

// lineAt is the 1-based line of byte offset off.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// typeMeta reads apiVersion, kind and name leniently: mistyped values are
// reported by the strict decoding of the kind's own type.
type typeMeta struct {
	APIVersion any `json:"apiVersion"`
	Kind       any `json:"kind"`
	Metadata   any `json:"metadata"`
}

func readTypeMeta(js []byte) (apiVersion, kind, name string) {
	var tm typeMeta
	_ = json.Unmarshal(js, &tm)
	apiVersion, _ = tm.APIVersion.(string)
	kind, _ = tm.Kind.(string)
	if m, ok := tm.Metadata.(map[string]any); ok {
		name, _ = m["name"].(string)
	}
	return apiVersion, kind, name
}

// decodeObject decodes one JSON object of a document (or of a List in it).
func (c *doc) decodeObject(js []byte) {
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return
	}
	if js[0] != '{' {
		c.fail("", "not a Kubernetes object (want a mapping with apiVersion and kind)")
		return
	}
	var tm struct{ APIVersion, Kind, Name string }
	tm.APIVersion, tm.Kind, tm.Name = readTypeMeta(js)
	if tm.Name != "" && tm.Kind != "" {
		c.object = tm.Kind + " " + tm.Name
	}
	group, version := splitAPIVersion(tm.APIVersion)
	switch {
	case tm.APIVersion == "" || tm.Kind == "":
		missing := "apiVersion"
		if tm.APIVersion != "" {
			missing = "kind"
		}
		c.fail(missing, "required: apiVersion and kind say what the object is (a fragment of a larger manifest?)")
	case strings.HasSuffix(tm.Kind, "List") && (tm.APIVersion == "v1" || group == GroupV1 || group == LegacyGroup || group == LegacyGroupAlt):
		c.decodeList(js)
	case group == GroupV1 && version == "v1":
		c.decodeV1(tm.Kind, js)
	case group == GroupV1 && (version == "v1alpha2" || version == "v1alpha3" || version == "v1beta1"):
		c.decodeOldV1(tm.APIVersion, tm.Kind, tm.Name, js)
	case group == GroupV1:
		c.fail("apiVersion", fmt.Sprintf("%s is not supported: write cert-manager.io/v1 (cmctl convert converts older manifests) or the legacy %s", tm.APIVersion, LegacyVersion))
	case tm.Kind == "Ingress" && (tm.APIVersion == IngressV1 || tm.APIVersion == ingressV1beta1 || tm.APIVersion == ingressExtensions):
		c.decodeIngress(tm.APIVersion, js)
	case (group == gatewayGroup || group == gatewayXGroup) && (tm.Kind == "Gateway" || tm.Kind == "ListenerSet" || tm.Kind == "XListenerSet"):
		c.decodeGateway(tm.APIVersion, strings.TrimPrefix(tm.Kind, "X"), js)
	case (group == LegacyGroup || group == LegacyGroupAlt) && version == "v1alpha1":
		c.decodeV1Alpha1(tm.APIVersion, tm.Kind, js)
	case group == LegacyGroup || group == LegacyGroupAlt:
		c.fail("apiVersion", fmt.Sprintf("%s is not supported: write cert-manager.io/v1 or %s", tm.APIVersion, LegacyVersion))
		// No cert-manager served it, but its fields are v1alpha1's (it is
		// a typo in cert-manager's own 0.8 upgrade guide): read them to
		// report every problem at once, keeping no object.
		n := len(c.d.res.Objects)
		c.decodeV1Alpha1(tm.APIVersion, tm.Kind, js)
		c.d.res.Objects = c.d.res.Objects[:n]
	case group == "acme.cert-manager.io":
		c.fail("kind", fmt.Sprintf("%s %s is managed by cert-manager's controller; kubectl-acme applies only Issuer, ClusterIssuer and Certificate", tm.APIVersion, tm.Kind))
	default:
		what := tm.APIVersion + " " + tm.Kind
		if tm.Name != "" {
			what += " " + tm.Name
		}
		c.d.res.Skipped = append(c.d.res.Skipped, fmt.Sprintf("%s: %s: %s skipped: not an Issuer, ClusterIssuer or Certificate", c.d.file, c.loc, what))
	}
}

func splitAPIVersion(v string) (group, version string) {
	if i := strings.LastIndex(v, "/"); i >= 0 {
		return v[:i], v[i+1:]
	}
	return "", v
}

func (c *doc) decodeList(js []byte) {
	if c.loc.Item >= 0 {
		c.fail("", "a List inside a List is not supported")
		return
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(js, &list); err != nil {
		c.fail("items", "want a list of objects")
		return
	}
	for i, item := range list.Items {
		ic := *c
		ic.loc.Item = i
		ic.prefix = index("items", i)
		ic.object = ""
		ic.decodeObject(item)
	}
}

// strict decodes js into v, reporting unknown, duplicate and mistyped
// fields with their paths. It reports whether v is usable: after unknown
// or duplicate fields it is, so the caller goes on to report more.
func (c *doc) strict(js []byte, v any) bool {
	strictErrs, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		path, reason := typeError(err)
		c.fail(path, reason)
		return false
	}
	for _, e := range strictErrs {
		msg := e.Error()
		switch {
		case strings.HasPrefix(msg, "unknown field "):
			path, _ := strconv.Unquote(strings.TrimPrefix(msg, "unknown field "))
			reason := "unknown field: cert-manager has no such field here"
			if s := suggest(v, path); s != "" {
				reason += "; did you mean " + s + "?"
			}
			c.fail(path, reason)
		case strings.HasPrefix(msg, "duplicate field "):
			path, _ := strconv.Unquote(strings.TrimPrefix(msg, "duplicate field "))
			c.fail(path, "field given twice")
		default:
			c.fail("", msg)
		}
	}
	return true
}

var typeErrorRE = regexp.MustCompile(`^json: cannot unmarshal (\S+).* into Go (?:struct field (\S+)|value) of type (\S+)$`)

// typeError turns a decoding error into a field path and a reason.
func typeError(err error) (path, reason string) {
	m := typeErrorRE.FindStringSubmatch(err.Error())
	if m == nil {
		return "", strings.TrimPrefix(err.Error(), "json: ")
	}
	if m[2] != "" {
		// Struct.field.sub, where embedded Go struct names appear as
		// capitalized segments: keep only the JSON names.
		segs := strings.Split(m[2], ".")[1:]
		var keep []string
		for _, s := range segs {
			if s != "" && (s[0] < 'A' || s[0] > 'Z') {
				keep = append(keep, s)
			}
		}
		path = strings.Join(keep, ".")
	}
	return path, fmt.Sprintf("want %s, got %s", describeGoType(m[3]), describeJSON(m[1]))
}

func describeGoType(t string) string {
	t = strings.TrimLeft(t, "*")
	switch {
	case t == "string" || strings.HasSuffix(t, "ServiceType") || strings.HasSuffix(t, "PolicyType"):
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return "a mapping"
}

func describeJSON(v string) string {
	switch {
	case v == "array":
		return "a list"
	case v == "object":
		return "a mapping"
	case v == "bool":
		return "true or false"
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "string":
		return "a string"
	}
	return v
}
