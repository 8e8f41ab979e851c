package main

import (
	"math"
	"strings"
	"testing"
)

// TestMedianInterval: the interval of the median ratio printed in the
// table, for the round counts make bench uses, against the binomial
// levels worked out by hand.
func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 { // n rounds, shuffled: n/100, ..., 1/100
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64((i*7)%n+1) / 100
		}
		return xs
	}
	tests := []struct {
		name          string
		rounds        []float64
		lo, hi, level float64
	}{
		{"five rounds: no 95% interval, the least to the greatest", seq(5), 0.01, 0.05, 1 - 2.0/32},
		{"ten rounds: the second to the ninth", seq(10), 0.02, 0.09, 1 - 2*11.0/1024},
		{"six rounds: the least to the greatest, the fewest for 95%", seq(6), 0.01, 0.06, 1 - 2.0/64},
		{"fifteen rounds: the fourth to the twelfth", seq(15), 0.04, 0.12, 1 - 2*576.0/32768},
		{"twenty rounds: the sixth to the fifteenth", seq(20), 0.06, 0.15, 1 - 2*21700.0/1048576},
		{"one round", []float64{0.9}, 0.9, 0.9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, level := medianInterval(tt.rounds)
			if lo != tt.lo || hi != tt.hi || math.Abs(level-tt.level) > 1e-9 {
				t.Errorf("medianInterval = %.2f to %.2f at %.4f; want %.2f to %.2f at %.4f", lo, hi, level, tt.lo, tt.hi, tt.level)
			}
		})
	}
}

// TestMedian: the middle round, or the mean of the two middle ones.
func TestMedian(t *testing.T) {
	if got := median([]float64{0.9, 0.7, 0.8}); got != 0.8 {
		t.Errorf("median of three = %v, want 0.8", got)
	}
	if got := median([]float64{0.9, 0.7, 0.8, 1.0}); math.Abs(got-0.85) > 1e-9 {
		t.Errorf("median of four = %v, want 0.85, not the upper middle 0.9", got)
	}
}

// TestVerdict: what the Notes say of a pair measured against its goal.
func TestVerdict(t *testing.T) {
	tests := []struct {
		name   string
		rounds []float64
		want   string
	}{
		{"all of the interval above the goal", []float64{0.91, 0.95, 0.93, 0.99, 0.92, 0.94, 0.96, 0.90, 0.97, 0.93}, "goal 0.9: met (98% interval of the median 0.91 to 0.97)"},
		{"all of it below", []float64{0.81, 0.85, 0.83, 0.89, 0.82, 0.84, 0.86, 0.80, 0.87, 0.83}, "goal 0.9: not met (98% interval of the median 0.81 to 0.87)"},
		{"too few rounds for a 95% interval", []float64{0.95, 0.96, 0.97}, "goal 0.9: undecided (75% interval of the median 0.95 to 0.97; at least six rounds are needed for a 95% one)"},
		{"the goal inside it", []float64{0.81, 0.95, 0.83, 0.99, 0.92, 0.94, 0.86, 0.80, 0.97, 0.93}, "goal 0.9: undecided (98% interval of the median 0.81 to 0.97; more rounds narrow it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdict(tt.rounds, 0.9); got != tt.want {
				t.Errorf("verdict = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGoalRounds: the pairs with a goal get at least ten rounds in the
// time the others take, so make bench's default run can decide them.
func TestGoalRounds(t *testing.T) {
	got := goalRounds(options{rounds: 5, duration: 2e9})
	if got.rounds != 10 || got.duration != 1e9 {
		t.Errorf("5 rounds of 2s: goal pairs get %d of %s, want 10 of 1s", got.rounds, got.duration)
	}
	if got := goalRounds(options{rounds: 15, duration: 2e9}); got.rounds != 15 || got.duration != 2e9 {
		t.Errorf("15 rounds of 2s: goal pairs get %d of %s, want the same", got.rounds, got.duration)
	}
	if got := goalRounds(options{rounds: 1, duration: 1e9}); got.duration != 5e8 {
		t.Errorf("1 round of 1s: goal rounds of %s, want at least 500ms", got.duration)
	}
	if table := render([]row{{pair: "livez", label: "full stack", perSecond: []float64{1}, ratio: []float64{0.95, 0.96, 0.97, 0.95, 0.96, 0.97}, goal: 0.9}}, options{rounds: 5, duration: 2e9}, 0); !strings.Contains(table, "goal 0.9: met") || !strings.Contains(table, "(the pairs with a goal, 10 of 1s)") {
		t.Errorf("the table does not say the goal pairs' rounds or verdict:\n%s", table)
	}
}
