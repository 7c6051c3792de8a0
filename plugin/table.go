package plugin

import (
	"bufio"
	"io"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
)

// printTable writes rows in kubectl's plain column layout, with kubectl's
// own writer (cli-runtime's printers.GetNewTabWriter, which `kubectl get`
// prints through): upper-case headers, no borders, columns three spaces
// apart, the last column unpadded, nothing wrapped. It replaced
// olekukonko/tablewriter, which took 1.9 s for the 50,000 rows of a large
// `status -A` against 0.1 s for this (bench/README.md).
func printTable(w io.Writer, header []string, rows [][]string) error {
	out := &trimWriter{w: bufio.NewWriter(w)}
	tw := printers.GetNewTabWriter(out)
	line := func(cells []string) error {
		for i, c := range cells {
			if i > 0 {
				if _, err := io.WriteString(tw, "\t"); err != nil {
					return err
				}
			}
			if strings.ContainsAny(c, "\t\r\n") {
				c = cellText.Replace(c)
			}
			if _, err := io.WriteString(tw, c); err != nil {
				return err
			}
		}
		_, err := io.WriteString(tw, "\n")
		return err
	}
	if err := line(header); err != nil {
		return err
	}
	for _, r := range rows {
		if err := line(r); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return out.w.Flush()
}

// trimWriter drops the spaces at the end of each line: a row whose last
// cells are empty would otherwise end in its columns' padding.
type trimWriter struct {
	w      *bufio.Writer
	spaces int // held back until something other than a line break follows
}

func (t *trimWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch b {
		case ' ':
			t.spaces++
			continue
		case '\n':
			t.spaces = 0
		}
		for ; t.spaces > 0; t.spaces-- {
			if err := t.w.WriteByte(' '); err != nil {
				return 0, err
			}
		}
		if err := t.w.WriteByte(b); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// cellText keeps a cell on its line and in its column: a tab or a line
// break (a CA's problem detail may hold one) would start another.
var cellText = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ")
