package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// median is the middle value, or the mean of the two middle values of an
// even count (not the upper one: with the goal pairs' ten rounds that
// would lean every headline ratio up).
func median[T float64 | time.Duration](xs []T) T {
	n := len(xs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// medianInterval is a confidence interval for the median of the rounds'
// ratios that assumes nothing about how they are spread, only that rounds
// are independent: sorted, the k-th smallest and the k-th largest, where k
// is the largest for which the chance that the true median lies outside is
// at most 5% (each round falls on either side of it with probability 1/2,
// so the count below it is binomial). Five rounds allow no 95% interval:
// the widest, from the least to the greatest, covers 93.75%, and that is
// what is returned, with its level.
func medianInterval(xs []float64) (lo, hi, level float64) {
	n := len(xs)
	if n == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	// [s[k-1], s[n-k]] misses the median with probability 2 P(X <= k-1).
	k := 1
	for 2*(k+1) <= n+1 && 1-2*binomTail(n, k) >= 0.95 {
		k++
	}
	level = 1 - 2*binomTail(n, k-1)
	return s[k-1], s[n-k], level
}

// binomTail is P(X <= m) for X ~ Bin(n, 1/2).
func binomTail(n, m int) float64 {
	sum, c := 0.0, 1.0
	for j := 0; j <= m; j++ {
		sum += c
		c = c * float64(n-j) / float64(j+1)
	}
	return sum / math.Pow(2, float64(n))
}

// verdict says whether the rounds show a ratio at or above goal on this
// machine: met when the whole interval is at or above it, not met when it
// is all below, undecided otherwise (more rounds narrow the interval), and
// undecided too when the rounds are too few for a 95% interval.
func verdict(ratios []float64, goal float64) string {
	lo, hi, level := medianInterval(ratios)
	ci := fmt.Sprintf("%.0f%% interval of the median %.2f to %.2f", 100*level, lo, hi)
	switch {
	case level < 0.95:
		return fmt.Sprintf("goal %.1f: undecided (%s; at least six rounds are needed for a 95%% one)", goal, ci)
	case lo >= goal:
		return fmt.Sprintf("goal %.1f: met (%s)", goal, ci)
	case hi < goal:
		return fmt.Sprintf("goal %.1f: not met (%s)", goal, ci)
	default:
		return fmt.Sprintf("goal %.1f: undecided (%s; more rounds narrow it)", goal, ci)
	}
}
