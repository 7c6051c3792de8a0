package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a series of measurements, in seconds (or in the unit
// of the series for non-time values).
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// P10 and P90 are the spread, by nearest rank.
	P10 float64 `json:"p10"`
	P90 float64 `json:"p90"`
}

// Summarize computes a Summary; an empty series gives the zero Summary.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{
		N:      len(s),
		Median: median(s),
		Min:    s[0],
		Max:    s[len(s)-1],
		P10:    rank(s, 0.10),
		P90:    rank(s, 0.90),
	}
}

// Seconds converts durations for Summarize.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// rank is the nearest-rank percentile of a sorted series.
func rank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
