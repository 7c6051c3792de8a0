package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/kubectl-acme/kubectl-acme/internal/status"
)

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	err := printTable(&b, []string{"NAME", "NOT AFTER", "STATUS"}, [][]string{
		{"web", "2027-01-01T00:00:00Z", "Ready"},
		{"a-much-longer-name", "", "Failed: challenge failed: x.example.com: unauthorized: 404"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME                 NOT AFTER              STATUS\n" +
		"web                  2027-01-01T00:00:00Z   Ready\n" +
		"a-much-longer-name                          Failed: challenge failed: x.example.com: unauthorized: 404\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// A row ending in empty cells ends without their padding, and a line
// break inside a cell stays inside it.
func TestPrintTableTrims(t *testing.T) {
	var b bytes.Buffer
	if err := printTable(&b, []string{"NAME", "DETAIL", "NOTE"}, [][]string{
		{"a-long-name", "", ""},
		{"b", "two\nlines", "x"},
	}); err != nil {
		t.Fatal(err)
	}
	want := "NAME          DETAIL      NOTE\n" +
		"a-long-name\n" +
		"b             two lines   x\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// The header is written in streaming mode, even over no rows.
func TestPrintTableHeaderOnly(t *testing.T) {
	var b bytes.Buffer
	if err := printTable(&b, []string{"NAME", "STATUS"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "NAME   STATUS\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Columns are as wide as a terminal shows their cells: a CJK character
// takes two cells, an accented letter one.
func TestPrintTableDisplayWidth(t *testing.T) {
	var b bytes.Buffer
	if err := printTable(&b, []string{"NAME", "NOTE", "X"}, [][]string{
		{"日本", "é", "1"},
		{"ab", "long", "2"},
	}); err != nil {
		t.Fatal(err)
	}
	want := "NAME   NOTE   X\n" +
		"日本   é      1\n" +
		"ab     long   2\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The describe view's fields: values two spaces after the longest label,
// kubectl describe's layout.
func TestPrintFields(t *testing.T) {
	var b bytes.Buffer
	if err := printFields(&b, [][]string{{"Name:", "web"}, {"Renew After:", "2027-01-01T00:00:00Z (in 30d)"}, {"Secret:", ""}}); err != nil {
		t.Fatal(err)
	}
	want := "Name:         web\n" +
		"Renew After:  2027-01-01T00:00:00Z (in 30d)\n" +
		"Secret:\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// The streamed table is byte for byte what tablewriter's batch Render
// printed before (printTableBatch, the configuration before 590bcfc).
func TestPrintTableMatchesBatch(t *testing.T) {
	header, rows := statusRows(500)
	rows = append(rows, []string{"ns", "名前", "é-tls", "", "Issuer/le", "<none>", "<none>", "Failed: ü", "1d"})
	var stream, batch bytes.Buffer
	if err := printTable(&stream, header, rows); err != nil {
		t.Fatal(err)
	}
	if err := printTableBatch(&batch, header, rows); err != nil {
		t.Fatal(err)
	}
	if stream.String() != batch.String() {
		t.Errorf("streamed table differs from the batch one:\n%s\nbatch:\n%s", stream.String()[:2000], batch.String()[:2000])
	}
}

// statusRows is a `status -A` table of n certificates, shaped like the
// bench's seed (bench/status.go): some failed, some with several names.
func statusRows(n int) ([]string, [][]string) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]status.Row, 0, n)
	for i := range n {
		ns := fmt.Sprintf("bench-status-%02d", i/1000)
		name := fmt.Sprintf("site-%03d", i%1000)
		domains := name + "." + ns + ".example.test"
		for j := range i % 4 {
			domains += fmt.Sprintf(",alt%d.%s.%s.example.test", j, name, ns)
		}
		issued := now.Add(-time.Duration(i%60) * 24 * time.Hour)
		notAfter, renew := issued.Add(90*24*time.Hour), issued.Add(60*24*time.Hour)
		r := status.Row{Namespace: ns, Name: name, Secret: name + "-tls", Domains: domains, Issuer: "Issuer/pebble",
			NotAfter: &notAfter, RenewAfter: &renew, Created: issued}
		if i%20 == 3 {
			r.LastFailure = "challenge failed: " + name + ": unauthorized: 404 from the ingress"
		}
		rows = append(rows, r)
	}
	return CertificateTable(rows, true, false, now)
}

// BenchmarkPrintTable prints the table of a 50,000-certificate `status -A`
// streamed (printTable) and through tablewriter's batch Bulk+Render
// (printTableBatch, what printTable did before).
func BenchmarkPrintTable(b *testing.B) {
	header, rows := statusRows(50000)
	for _, bc := range []struct {
		name  string
		print func(io.Writer, []string, [][]string) error
	}{{"stream", printTable}, {"batch", printTableBatch}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if err := bc.print(io.Discard, header, rows); err != nil {
					b.Fatal(err)
				}
			}
			// The machine this runs on is shared: CPU time (user+sys,
			// GC included) moves far less with load than ns/op.
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+sys time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// printTableBatch is printTable as it was before 590bcfc: tablewriter's batch
// mode, every row held and measured by Render, the padding of the last
// column cut off afterwards.
func printTableBatch(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off, ShowTop: tw.Off, ShowBottom: tw.Off},
			},
		})),
		tablewriter.WithConfig(tablewriter.Config{
			Header: tw.CellConfig{
				Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
				Formatting: tw.CellFormatting{AutoFormat: tw.Off, AutoWrap: tw.WrapNone},
				Padding:    tw.CellPadding{Global: tw.Padding{Left: "", Right: "   ", Overwrite: true}},
			},
			Row: tw.CellConfig{
				Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
				Formatting: tw.CellFormatting{AutoWrap: tw.WrapNone},
				Padding:    tw.CellPadding{Global: tw.Padding{Left: "", Right: "   ", Overwrite: true}},
			},
		}),
		tablewriter.WithTrimSpace(tw.Off),
	)
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// A table in an indented block keeps its indent when a write ends inside
// a line.
func TestIndentAcrossWrites(t *testing.T) {
	var b bytes.Buffer
	w := &indent{w: &b}
	for _, p := range []string{"DOMAIN   ST", "ATE\na.example   valid\nb", ".example   invalid\n"} {
		if _, err := io.WriteString(w, p); err != nil {
			t.Fatal(err)
		}
	}
	want := "  DOMAIN   STATE\n  a.example   valid\n  b.example   invalid\n"
	if got := b.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A write error is returned, not dropped in the renderer.
func TestPrintTableWriteError(t *testing.T) {
	_, rows := statusRows(2000) // more than the 64 KiB buffer
	if err := printTable(failingWriter{}, []string{"A"}, rows); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error %v, want disk full", err)
	}
}
