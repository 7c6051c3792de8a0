package manifest

import (
	"reflect"
	"strings"
)

// suggest names a field that exists where path's last field was not
// found, when it differs only in case or by a typo or two: the usual
// reasons for an unknown field.
func suggest(v any, path string) string {
	t := reflect.TypeOf(v)
	segs := splitPath(path)
	if len(segs) == 0 {
		return ""
	}
	for _, seg := range segs[:len(segs)-1] {
		t = deref(t)
		switch {
		case strings.HasPrefix(seg, "["):
			if t.Kind() != reflect.Slice {
				return ""
			}
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := jsonFields(t)[seg]
			if !ok {
				return ""
			}
			t = f
		default:
			return ""
		}
	}
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return ""
	}
	unknown := segs[len(segs)-1]
	best, bestDist := "", 3
	for name := range jsonFields(t) {
		if strings.EqualFold(name, unknown) {
			return name
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(unknown)); d < bestDist && d <= len(name)/3 {
			best, bestDist = name, d
		}
	}
	return best
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonFields maps a struct's JSON field names, embedded structs' included,
// to their types; a shallower field hides a deeper one, as in encoding/json.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			embedded = append(embedded, deref(f.Type))
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	for _, e := range embedded {
		if e.Kind() != reflect.Struct {
			continue
		}
		for name, ft := range jsonFields(e) {
			if _, ok := out[name]; !ok {
				out[name] = ft
			}
		}
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
