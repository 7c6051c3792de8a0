package plugin

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/olekukonko/ll"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/tw"
)

// The one place plugin/ renders rows: every table (status, get issuers,
// schedule status, check, the progress view, the describe view's fields)
// goes through renderTable, on olekukonko/tablewriter.

// tableGap separates the columns of a table: kubectl's three spaces.
const tableGap = 3

// printTable writes rows in kubectl's plain column layout: upper-case
// headers (the caller's), no borders, columns three spaces apart, the last
// column unpadded, nothing wrapped.
func printTable(w io.Writer, header []string, rows [][]string) error {
	return renderTable(w, header, rows, tableGap)
}

// printFields writes the label: value lines of a describe view, the values
// aligned two spaces after the longest label, as kubectl describe does.
func printFields(w io.Writer, fields [][]string) error {
	return renderTable(w, nil, fields, 2)
}

// renderTable streams the table through tablewriter: the column widths are
// measured in one pass first and given to it, so each row is written as
// it is appended instead of being held and measured again by tablewriter's
// batch Render; the lines are drawn by columns, a renderer of kubectl's
// layout. A nil header prints none.
func renderTable(w io.Writer, header []string, rows [][]string, gap int) error {
	widths := columnWidths(header, rows)
	if len(widths) == 0 {
		return nil
	}
	// Each column but the last is as wide as its widest cell and the gap.
	cellWidths := tw.NewMapper[int, int]()
	for i, n := range widths {
		if i < len(widths)-1 {
			n += gap
		}
		cellWidths.Set(i, n)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	r := &columns{}
	cell := tw.CellConfig{
		Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
		Formatting: tw.CellFormatting{AutoFormat: tw.Off}, // the headers come upper-case
	}
	t := tablewriter.NewTable(bw,
		tablewriter.WithRenderer(r),
		tablewriter.WithConfig(tablewriter.Config{Header: cell, Row: cell}),
		// WithConfig reads WrapNone (0) as unset and keeps word wrapping:
		// no cell is wider than its column, but the wrapper would still
		// split and rejoin each one.
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithStreaming(tw.StreamConfig{Enable: true}),
		tablewriter.WithWidths(tw.CellWidth{PerColumn: cellWidths}),
	)
	if err := t.Start(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	// In streaming mode the header is drawn when it is given, so it comes
	// after Start (given before, it would wait for a batch Render).
	if header != nil {
		t.Header(cellsText(header))
	}
	for _, row := range rows {
		if err := t.Append(cellsText(row)); err != nil {
			return fmt.Errorf("table: %w", err)
		}
	}
	if err := t.Close(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return bw.Flush()
}

// columns is a tablewriter renderer (tw.Renderer) of kubectl's plain
// layout: no borders, no separator lines, each cell left-aligned and
// padded with spaces to its column's width, nothing after a line's last
// text (a row ending in empty or short cells ends there, not in padding).
// tablewriter's own Blueprint renderer draws this with every border and
// line turned off, but measures each cell four times over, pads it with
// the column's padding repeated and cuts it back, and then still pads the
// last column: twice the CPU of this for the 50,000 rows of a large
// `status -A` (BenchmarkPrintTable).
type columns struct {
	w    io.Writer
	line []byte
	err  error
}

func (c *columns) Start(w io.Writer) error { c.w = w; return nil }

func (c *columns) Header(lines [][]string, ctx tw.Formatting) {
	for _, l := range lines {
		c.draw(l, ctx.Row.Widths)
	}
}

func (c *columns) Row(cells []string, ctx tw.Formatting) { c.draw(cells, ctx.Row.Widths) }

func (c *columns) Footer(lines [][]string, ctx tw.Formatting) {
	for _, l := range lines {
		c.draw(l, ctx.Row.Widths)
	}
}

// Line draws nothing: the layout has no borders or separator lines.
func (c *columns) Line(tw.Formatting) {}

func (c *columns) Config() tw.Rendition {
	return tw.Rendition{
		Borders: tw.BorderNone,
		Symbols: tw.NewSymbols(tw.StyleNone),
		Settings: tw.Settings{
			Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
			Lines:      tw.Lines{ShowTop: tw.Off, ShowBottom: tw.Off, ShowHeaderLine: tw.Off, ShowFooterLine: tw.Off},
		},
		Streaming: true,
	}
}

// Close reports the first write error: tablewriter's Row and Header
// return none.
func (c *columns) Close() error { return c.err }

func (c *columns) Logger(*ll.Logger) {}

func (c *columns) draw(cells []string, widths tw.Mapper[int, int]) {
	if c.err != nil {
		return
	}
	b := c.line[:0]
	pad := 0 // spaces owed before the next text
	for i, cell := range cells {
		if cell != "" {
			for ; pad > 0; pad-- {
				b = append(b, ' ')
			}
			b = append(b, cell...)
		}
		pad += max(widths.Get(i)-displayWidth(cell), 0)
	}
	b = append(b, '\n')
	_, c.err = c.w.Write(b)
	c.line = b
}

// columnWidths measures each column's display width (what a terminal
// shows: a CJK character takes two cells), header included.
func columnWidths(header []string, rows [][]string) []int {
	var widths []int
	measure := func(cells []string) {
		for len(widths) < len(cells) {
			widths = append(widths, 0)
		}
		for i, c := range cells {
			if n := displayWidth(cellText(c)); n > widths[i] {
				widths[i] = n
			}
		}
	}
	measure(header)
	for _, r := range rows {
		measure(r)
	}
	return widths
}

// displayWidth is len for ASCII, which almost every cell is, and
// tablewriter's own measure otherwise, so the widths given agree with the
// ones it pads to.
func displayWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return twwidth.Width(s)
		}
	}
	return len(s)
}

// cellText keeps a cell on its line and in its column: a line break (a
// CA's problem detail may hold one) would start another line, a tab jump
// past the column.
func cellText(s string) string {
	if strings.ContainsAny(s, "\t\r\n") {
		return cellReplacer.Replace(s)
	}
	return s
}

// cellsText is cells through cellText, copied only when one changes: the
// caller's rows stay as they were.
func cellsText(cells []string) []string {
	for i, c := range cells {
		if t := cellText(c); t != c {
			out := make([]string, len(cells))
			copy(out, cells)
			out[i] = t
			for j := i + 1; j < len(cells); j++ {
				out[j] = cellText(cells[j])
			}
			return out
		}
	}
	return cells
}

var cellReplacer = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ")
