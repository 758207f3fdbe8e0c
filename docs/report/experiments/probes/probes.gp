# linear probes of the residual stream (in-sample least squares)
# Written by mesalab. Data: probes.csv, columns panel,series,x,y,value: one line per point
# of a curve (value empty), or per heat-map cell (series "heatmap", x = column,
# y = row). Running gnuplot on probes.gp in this directory writes probes.svg and probes.png.
# Each plot clause picks its lines with `every ::first::last`, counting the CSV's lines
# from 0 = the header.
if (!exists("outstem")) outstem = 'probes'
datafile = 'probes.csv'

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
    set terminal svg size 1446,450 enhanced font 'Helvetica,12' background rgb 'white'
  } else {
    set terminal pngcairo size 1446,450 enhanced font 'Helvetica,12' background rgb 'white'
  }
  set output outstem.'.'.fmt
  set multiplot layout 1,2 title 'linear probes of the residual stream (in-sample least squares)' noenhanced font ',14'

  # panel 1: 'next state s_t+1'
  reset
  eval style
  set title 'next state s_t+1' noenhanced
  set xlabel 'time step t' noenhanced
  set ylabel 'probe loss sum (AP - Y)^2 / 2B' noenhanced
  set logscale y
  # line 1: series 'input', CSV lines 1-50
  # line 2: series 'layer 1', CSV lines 51-100
  # line 3: series 'layer 2', CSV lines 101-150
  plot \
    datafile every ::1::50 using (finite($3)):(positive($4)) with lines lt 1 title 'input' noenhanced, \
    datafile every ::51::100 using (finite($3)):(positive($4)) with lines lt 2 title 'layer 1' noenhanced, \
    datafile every ::101::150 using (finite($3)):(positive($4)) with lines lt 3 title 'layer 2' noenhanced

  # panel 2: 'preconditioned input (sum_i<t s_i s_i^T + lambda I)^-1 s_t'
  reset
  eval style
  set title 'preconditioned input (sum_i<t s_i s_i^T + lambda I)^-1 s_t' noenhanced
  set xlabel 'time step t' noenhanced
  set ylabel 'probe loss sum (AP - Y)^2 / 2B' noenhanced
  set logscale y
  # line 1: series 'input', CSV lines 151-200
  # line 2: series 'layer 1', CSV lines 201-250
  # line 3: series 'layer 2', CSV lines 251-300
  plot \
    datafile every ::151::200 using (finite($3)):(positive($4)) with lines lt 1 title 'input' noenhanced, \
    datafile every ::201::250 using (finite($3)):(positive($4)) with lines lt 2 title 'layer 1' noenhanced, \
    datafile every ::251::300 using (finite($3)):(positive($4)) with lines lt 3 title 'layer 2' noenhanced

  unset multiplot
  unset output
}
