package main

import (
	"fmt"
	"strings"
	"time"
)

// render writes the rows as the Markdown that goes into docs/PERFORMANCE.md.
func render(rows []row, o options, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	howLong := fmt.Sprintf("%d rounds of %s per side", o.rounds, o.duration)
	if g := goalRounds(o); g.rounds != o.rounds {
		howLong += fmt.Sprintf(" (the pairs with a goal, %d of %s)", g.rounds, g.duration)
	}
	fmt.Fprintf(&b, "%s, %d keep-alive clients, A and B alternating (AB, BA, ...; with more sides A B C, C B A, and B/A is each side against the first); servers pinned to one core, load on the other; whole run %s. The interval after each median ratio is a confidence interval of the median that assumes only that rounds are independent (its level grows with the rounds: 94%% from five, the least to the greatest; 98%% from ten; 96%% from twenty).\n\n",
		howLong, o.clients, took.Round(time.Second))
	b.WriteString("| Pair | Side | req/s (median) | p50 | p99 | B/A per round | B/A median (interval) | server CPU a request (median) | CPU, A's over B's: median (interval) | Notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		rounds := ""
		if len(r.ratio) > 0 {
			parts := make([]string, len(r.ratio))
			for i, x := range r.ratio {
				parts[i] = fmt.Sprintf("%.2f", x)
			}
			rounds = strings.Join(parts, ", ")
		}
		cpu := ""
		if len(r.cpu) > 0 {
			cpu = fmt.Sprintf("%.1f µs", median(r.cpu)/1000)
		}
		extra := r.extra
		if r.goal > 0 && len(r.ratio) > 0 {
			extra = strings.TrimPrefix(extra+"; req/s "+verdict(r.ratio, r.goal), "; ")
		}
		if r.goal > 0 && len(r.cpuRatio) > 0 {
			extra += "; CPU a request " + verdict(r.cpuRatio, r.goal)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.pair, r.label, median(r.perSecond),
			ms(median(r.p50)), ms(median(r.p99)), rounds, medianCell(r.ratio), cpu, medianCell(r.cpuRatio), extra)
	}
	return b.String()
}

// medianCell is a ratio's median in bold and its interval; "" for none.
func medianCell(ratios []float64) string {
	if len(ratios) == 0 {
		return ""
	}
	lo, hi, _ := medianInterval(ratios)
	return fmt.Sprintf("**%.2f** (%.2f to %.2f)", median(ratios), lo, hi)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
