# SPDX-License-Identifier: MIT
# plot.gp - the comparison's plots, from the files bench/compare/compare.c wrote:
#   gnuplot -e "dir='bench/results'" bench/compare/plot.gp
# writes dir/compare-throughput.png (messages/s and MB/s by size, log scales)
# and dir/compare-latency.png (round-trip percentiles per system, one panel per size);
# when the run measured Aeron (columns 10, 11 of compare.tsv), also
# dir/compare-vs-aeron.png (each system's throughput and round-trip p50 over
# Aeron IPC's in the same rounds).

if (!exists("dir")) dir = 'bench/results'
tsv = dir.'/compare.tsv'
lat = dir.'/compare_latency.tsv'

# pngcairo when this gnuplot has it (anti-aliased), else the gd png terminal.
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
	set terminal pngcairo size 1400,650 noenhanced font ',10'
} else {
	set terminal png size 1400,650 noenhanced
}
set datafile separator "\t"
set datafile missing 'NA'
# Twelve distinct colours (gnuplot's default cycle has eight).
colours = '#9400d3 #009e73 #56b4e9 #e69f00 #f0e442 #0072b2 #e51e10 #000000 #cc79a7 #808000 #00bfbf #8b4513'
do for [i = 1:12] { set linetype i lc rgb word(colours, i) lw 2 }

systems = system("awk -F'\t' 'NR > 1 && $3 != \"NA\" && !seen[$1]++ { printf \"%s \", $1 }' '".tsv."'")
sizes = system("awk -F'\t' '!/^#/ && NF && !seen[$2]++ { printf \"%s \", $2 }' '".lat."'")
sizename(s) = (s >= 1024 ? sprintf('%d KiB', s / 1024) : sprintf('%d B', s))

# --- throughput ------------------------------------------------------------------
set output dir.'/compare-throughput.png'
set multiplot layout 1,2 title 'Throughput by message size: two pinned processes (median of the runs)'
set logscale xy
set xrange [40:26000]
set xtics ('64 B' 64, '256 B' 256, '1 KiB' 1024, '4 KiB' 4096, '16 KiB' 16384)
set grid
set key outside right top vertical
set xlabel 'message size'
set ylabel 'messages / s'
set format y '%.0s%c'
plot for [i = 1:words(systems)] tsv using 2:(strcol(1) eq word(systems, i) ? $3 : NaN) \
	with linespoints lt i title word(systems, i)
set ylabel 'MB / s (payload, 10^6 B)'
plot for [i = 1:words(systems)] tsv using 2:(strcol(1) eq word(systems, i) ? $4 : NaN) \
	with linespoints lt i title word(systems, i)
unset multiplot

# --- round-trip latency percentiles ----------------------------------------------
reset
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
	set terminal pngcairo size 1400,650 noenhanced font ',10'
} else {
	set terminal png size 1400,650 noenhanced
}
set datafile separator "\t"
set datafile missing 'NA'
set output dir.'/compare-latency.png'
n = words(sizes)
if (n > 0) {
	set multiplot layout 1,n title 'Round trip (ping -> echo), percentiles, log scale (median of the runs)'
	set logscale y
	set grid ytics
	set ylabel 'round trip'
	set format y '%.0s %cs'
	set xtics rotate by 45 right
	set key top left
	set offsets 0.5, 0.5, 0, 0
	do for [i = 1:n] {
		set title sizename(word(sizes, i) + 0)
		plot lat index (i - 1) using 0:($3 * 1e-9):xtic(1) with points pt 7 ps 1.5 title 'p50', \
		     '' index (i - 1) using 0:($4 * 1e-9) with points pt 5 ps 1.3 title 'p90', \
		     '' index (i - 1) using 0:($5 * 1e-9) with points pt 9 ps 1.5 title 'p99', \
		     '' index (i - 1) using 0:($6 * 1e-9) with points pt 11 ps 1.5 title 'p99.9'
	}
	unset multiplot
} else {
	set title 'no round-trip results'
	unset border
	unset tics
	plot [0:1][0:1] NaN notitle
}

# --- against Aeron IPC (only when measured) ------------------------------------------
ratios = system("awk -F'\t' 'NR > 1 && ($10 != \"NA\" || $11 != \"NA\") && $1 != \"aeron-ipc\" && !seen[$1]++ { printf \"%s \", $1 }' '".tsv."'")
if (words(ratios) > 0) {
	reset
	if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
		set terminal pngcairo size 1400,650 noenhanced font ',10'
	} else {
		set terminal png size 1400,650 noenhanced
	}
	do for [i = 1:12] { set linetype i lc rgb word(colours, i) lw 2 }
	set datafile separator "\t"
	set datafile missing 'NA'
	set output dir.'/compare-vs-aeron.png'
	set multiplot layout 1,2 title 'Against Aeron IPC (aeron:ipc), round by round: median of (system / Aeron) over the rounds'
	set logscale xy
	set xrange [40:26000]
	set xtics ('64 B' 64, '256 B' 256, '1 KiB' 1024, '4 KiB' 4096, '16 KiB' 16384)
	set grid
	set key outside right top vertical
	set xlabel 'message size'
	set ylabel 'messages/s over Aeron''s (> 1: faster)'
	plot for [i = 1:words(ratios)] tsv using 2:(strcol(1) eq word(ratios, i) ? $10 : NaN) \
		with linespoints lt i title word(ratios, i), 1 with lines lc rgb '#808080' dt 2 notitle
	set ylabel 'round-trip p50 over Aeron''s (< 1: quicker)'
	plot for [i = 1:words(ratios)] tsv using 2:(strcol(1) eq word(ratios, i) ? $11 : NaN) \
		with linespoints lt i title word(ratios, i), 1 with lines lc rgb '#808080' dt 2 notitle
	unset multiplot
}
