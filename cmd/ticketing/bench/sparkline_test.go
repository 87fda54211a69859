package bench

import "testing"

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want string
	}{
		{[]float64{0, 5, 10}, "▁▅█"},
		{[]float64{1, 1}, "██"},
		{[]float64{0, 0}, "▁▁"},
		{[]float64{2, 9.9, 10, 3}, "▂██▃"},
	} {
		if got := sparkline(c.in); got != c.want {
			t.Errorf("sparkline(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}
