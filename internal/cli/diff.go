package cli

import (
	"fmt"
	"io"
	"strings"
)

// writeDiff prints a unified diff of two texts with three lines of context.
// Specs are a few hundred lines, so the quadratic longest-common-subsequence
// table is cheap.
func writeDiff(w io.Writer, nameA, nameB, a, b string) {
	x := strings.SplitAfter(a, "\n")
	y := strings.SplitAfter(b, "\n")
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i++
			j++
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', y[j]})
			j++
		default:
			ops = append(ops, op{'-', x[i]})
			i++
		}
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", nameA, nameB)
	const context = 3
	changed := false
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		changed = true
		start := max(k-context, 0)
		end := k
		// Extend the hunk while changes are within 2*context lines.
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		fmt.Fprintln(w, "@@")
		for _, o := range ops[start:end] {
			line := strings.TrimSuffix(o.text, "\n")
			if line == "" && o.text == "" {
				continue
			}
			fmt.Fprintf(w, "%c%s\n", o.kind, line)
		}
		k = end
	}
	if !changed {
		fmt.Fprintln(w, "(no changes)")
	}
}
