# Baselines on linear sequences
# Written by mesalab. Data: baselines.csv, columns panel,series,x,y,value: one line per point
# of a curve (value empty), or per heat-map cell (series "heatmap", x = column,
# y = row). Running gnuplot on baselines.gp in this directory writes baselines.svg and baselines.png.
# Each plot clause picks its lines with `every ::first::last`, counting the CSV's lines
# from 0 = the header.
if (!exists("outstem")) outstem = 'baselines'
datafile = 'baselines.csv'

# Colour cycle (Okabe-Ito, colour-blind safe): series i of a panel uses linetype i (mod 8).
set linetype 1 lc rgb '#0072B2' lw 2 pt 7 ps 0.6
set linetype 2 lc rgb '#D55E00' lw 2 pt 7 ps 0.6
set linetype 3 lc rgb '#009E73' lw 2 pt 7 ps 0.6
set linetype 4 lc rgb '#CC79A7' lw 2 pt 7 ps 0.6
set linetype 5 lc rgb '#E69F00' lw 2 pt 7 ps 0.6
set linetype 6 lc rgb '#56B4E9' lw 2 pt 7 ps 0.6
set linetype 7 lc rgb '#000000' lw 2 pt 7 ps 0.6
set linetype 8 lc rgb '#999999' lw 2 pt 7 ps 0.6
set linetype cycle 8
# Points that cannot be drawn (non-finite, or <= 0 on a log axis) are left out.
finite(v) = (v == v && abs(v) < 1e308) ? v : NaN
positive(v) = (v > 0 && v < 1e308) ? v : NaN
# The style of every panel, applied after each panel's `reset`.
style = "set datafile separator ','; set style line 100 lc rgb '#D0D0D0' lw 1 dt 1; \
  set grid ls 100; set key outside right top Left reverse nobox; set tics out nomirror"

do for [fmt in "svg png"] {
  if (fmt eq "svg") {
    set terminal svg size 867,450 enhanced font 'Helvetica,12' background rgb 'white'
  } else {
    set terminal pngcairo size 867,450 enhanced font 'Helvetica,12' background rgb 'white'
  }
  set output outstem.'.'.fmt
  set multiplot layout 1,1 title 'Baselines on linear sequences' noenhanced font ',14'

  # panel 1: 'per-step test loss'
  reset
  eval style
  set title 'per-step test loss' noenhanced
  set xlabel 'time step t' noenhanced
  set ylabel 'test loss (MSE/2)' noenhanced
  set logscale y
  # line 1: series 'zero', CSV lines 1-50
  # line 2: series 'copy' (dashed), CSV lines 51-100
  # line 3: series 'least_squares' (dashed), CSV lines 101-150
  # line 4: series 'least_squares_all_pairs' (dashed), CSV lines 151-200
  # line 5: series 'gd1' (dashed), CSV lines 201-250
  plot \
    datafile every ::1::50 using (finite($3)):(positive($4)) with lines lt 1 title 'zero' noenhanced, \
    datafile every ::51::100 using (finite($3)):(positive($4)) with lines lt 2 dt 2 title 'copy' noenhanced, \
    datafile every ::101::150 using (finite($3)):(positive($4)) with lines lt 3 dt 2 title 'least_squares' noenhanced, \
    datafile every ::151::200 using (finite($3)):(positive($4)) with lines lt 4 dt 2 title 'least_squares_all_pairs' noenhanced, \
    datafile every ::201::250 using (finite($3)):(positive($4)) with lines lt 5 dt 2 title 'gd1' noenhanced

  unset multiplot
  unset output
}
