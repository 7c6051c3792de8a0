package manifest

import (
	"fmt"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Location is where an object came from: a file, the document in it
// (1-based) and, inside a List, the item (0-based; -1 outside a List).
type Location struct {
	File string
	Doc  int
	Item int
}

func (l Location) String() string {
	s := fmt.Sprintf("document %d", l.Doc)
	if l.Item >= 0 {
		s += fmt.Sprintf(", item %d", l.Item)
	}
	return s
}

// Error is one problem with one object: where it is, which field and why.
type Error struct {
	Location
	// Line is the 1-based line in File, 0 if unknown.
	Line int
	// Object is "Kind name" when known.
	Object string
	// Path is the field path, like spec.acme.solvers[0].http01; empty for
	// the whole document.
	Path   string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Object != "" {
		fmt.Fprintf(&b, "%s (%s): ", e.Object, e.Location)
	} else {
		fmt.Fprintf(&b, "%s: ", e.Location)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every problem found in the input, in input order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// lineOf returns the line in the document node of the field at path (as
// produced by fieldPath: "a.b[2].c"), or of its closest existing parent;
// 0 when the node is nil.
func lineOf(doc *yamlv3.Node, path string) int {
	n := doc
	if n == nil {
		return 0
	}
	if n.Kind == yamlv3.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, seg := range splitPath(path) {
		next, keyLine := child(n, seg)
		if next == nil {
			if keyLine > 0 {
				line = keyLine
			}
			break
		}
		n = next
		if keyLine > 0 {
			line = keyLine
		} else {
			line = n.Line
		}
	}
	return line
}

// child finds a mapping key or sequence index in n; for a key it also
// returns the key's line, where editors put the cursor.
func child(n *yamlv3.Node, seg string) (*yamlv3.Node, int) {
	for n.Kind == yamlv3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || n.Kind != yamlv3.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil, 0
		}
		return n.Content[i], 0
	}
	if n.Kind != yamlv3.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
}

// splitPath turns "a.b[2].c" into ["a", "b", "[2]", "c"].
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.Index(part, "[")
			switch {
			case i < 0:
				out = append(out, part)
				part = ""
			case i > 0:
				out = append(out, part[:i])
				part = part[i:]
			default:
				j := strings.Index(part, "]")
				if j < 0 {
					out = append(out, part)
					part = ""
					continue
				}
				out = append(out, part[:j+1])
				part = part[j+1:]
			}
		}
	}
	return out
}

// joinPath appends a field or index to a path.
func joinPath(base, field string) string {
	switch {
	case base == "":
		return field
	case strings.HasPrefix(field, "["):
		return base + field
	}
	return base + "." + field
}

func index(base string, i int) string { return fmt.Sprintf("%s[%d]", base, i) }
