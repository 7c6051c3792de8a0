package plugin

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kubectl-acme/kubectl-acme/acme"
)

// progress shows an order's steps on stderr: a live table redrawn in place
// on a terminal, otherwise one line per event (logs and CI stay readable).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool
	start time.Time
	now   func() time.Time

	order string // order-wide state
	rows  []*progressRow
	drawn int // lines drawn by the last redraw
}

type progressRow struct {
	identifier, state, detail string
	started, ended            time.Time
}

func newProgress(w io.Writer, live bool) *progress {
	return &progress{w: w, live: live, start: time.Now(), now: time.Now}
}

// Observe records an event and shows it.
func (p *progress) Observe(e acme.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if e.Identifier == "" {
		p.order = e.State
		if e.Detail != "" {
			p.order += ": " + e.Detail
		}
	} else {
		r := p.row(e.Identifier, now)
		r.state, r.detail = e.State, e.Detail
		switch e.State {
		case acme.StateValid, acme.StateInvalid, acme.StateErrored:
			r.ended = now
		}
	}
	if p.live {
		p.redraw(now)
		return
	}
	id := e.Identifier
	if id == "" {
		id = "order"
	}
	line := fmt.Sprintf("[%6.1fs] %-24s %-11s %s", now.Sub(p.start).Seconds(), id, e.State, e.Detail)
	fmt.Fprintln(p.w, trimRight(line))
}

func (p *progress) row(id string, now time.Time) *progressRow {
	for _, r := range p.rows {
		if r.identifier == id {
			return r
		}
	}
	r := &progressRow{identifier: id, started: now}
	p.rows = append(p.rows, r)
	return r
}

func (p *progress) redraw(now time.Time) {
	var b bytes.Buffer
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", p.drawn) // back to the table's top, clear below
	}
	var table bytes.Buffer
	rows := make([][]string, 0, len(p.rows))
	for _, r := range p.rows {
		end := now
		if !r.ended.IsZero() {
			end = r.ended
		}
		rows = append(rows, []string{r.identifier, "http-01", r.state, truncateDetail(r.detail), fmt.Sprintf("%.1fs", end.Sub(r.started).Seconds())})
	}
	_ = printTable(&table, []string{"DOMAIN", "CHALLENGE", "STATE", "DETAIL", "ELAPSED"}, rows)
	fmt.Fprintf(&table, "order: %s (%.1fs)\n", p.order, now.Sub(p.start).Seconds())
	p.drawn = bytes.Count(table.Bytes(), []byte("\n"))
	b.Write(table.Bytes())
	_, _ = p.w.Write(b.Bytes())
}

func truncateDetail(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

func trimRight(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}
