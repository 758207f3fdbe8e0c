# attention weights per head
# Written by mesalab. Data: one_gd_step_weights.csv, columns panel,series,x,y,value: one line per point
# of a curve (value empty), or per heat-map cell (series "heatmap", x = column,
# y = row). Running gnuplot on one_gd_step_weights.gp in this directory writes one_gd_step_weights.svg and one_gd_step_weights.png.
# Each plot clause picks its lines with `every ::first::last`, counting the CSV's lines
# from 0 = the header.
if (!exists("outstem")) outstem = 'one_gd_step_weights'
datafile = 'one_gd_step_weights.csv'

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
    set terminal svg size 1840,870 enhanced font 'Helvetica,12' background rgb 'white'
  } else {
    set terminal pngcairo size 1840,870 enhanced font 'Helvetica,12' background rgb 'white'
  }
  set output outstem.'.'.fmt
  set multiplot layout 2,4 title 'attention weights per head' noenhanced font ',14'

  # panel 1: 'layer 1 head 1: W_Q W_K^T'
  reset
  eval style
  set title 'layer 1 head 1: W_Q W_K^T' noenhanced
  set xlabel 'key token dimension' noenhanced
  set ylabel 'query token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 1-1600 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.05377922366:0.05377922366]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::1::1600 using 3:4:(finite($5)) with image

  # panel 2: 'layer 1 head 1: W_V W_O'
  reset
  eval style
  set title 'layer 1 head 1: W_V W_O' noenhanced
  set xlabel 'output dimension' noenhanced
  set ylabel 'value token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 1601-3200 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.06364542251:0.06364542251]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::1601::3200 using 3:4:(finite($5)) with image

  # panel 3: 'layer 1 head 2: W_Q W_K^T'
  reset
  eval style
  set title 'layer 1 head 2: W_Q W_K^T' noenhanced
  set xlabel 'key token dimension' noenhanced
  set ylabel 'query token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 3201-4800 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.04314648724:0.04314648724]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::3201::4800 using 3:4:(finite($5)) with image

  # panel 4: 'layer 1 head 2: W_V W_O'
  reset
  eval style
  set title 'layer 1 head 2: W_V W_O' noenhanced
  set xlabel 'output dimension' noenhanced
  set ylabel 'value token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 4801-6400 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.04860266467:0.04860266467]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::4801::6400 using 3:4:(finite($5)) with image

  # panel 5: 'layer 1 head 3: W_Q W_K^T'
  reset
  eval style
  set title 'layer 1 head 3: W_Q W_K^T' noenhanced
  set xlabel 'key token dimension' noenhanced
  set ylabel 'query token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 6401-8000 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.0592330578:0.0592330578]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::6401::8000 using 3:4:(finite($5)) with image

  # panel 6: 'layer 1 head 3: W_V W_O'
  reset
  eval style
  set title 'layer 1 head 3: W_V W_O' noenhanced
  set xlabel 'output dimension' noenhanced
  set ylabel 'value token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 8001-9600 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.08421363248:0.08421363248]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::8001::9600 using 3:4:(finite($5)) with image

  # panel 7: 'layer 1 head 4: W_Q W_K^T'
  reset
  eval style
  set title 'layer 1 head 4: W_Q W_K^T' noenhanced
  set xlabel 'key token dimension' noenhanced
  set ylabel 'query token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 9601-11200 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.05574955838:0.05574955838]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::9601::11200 using 3:4:(finite($5)) with image

  # panel 8: 'layer 1 head 4: W_V W_O'
  reset
  eval style
  set title 'layer 1 head 4: W_V W_O' noenhanced
  set xlabel 'output dimension' noenhanced
  set ylabel 'value token dimension' noenhanced
  # heat map, 40 rows x 40 columns, CSV lines 11201-12800 (x = column, y = row, value)
  unset key
  unset grid
  set palette defined (0 '#053061', 0.2 '#2166AC', 0.4 '#92C5DE', 0.5 '#F7F7F7', 0.6 '#F4A582', 0.8 '#B2182B', 1 '#67001F')
  set cbrange [-0.07073005757:0.07073005757]
  set xrange [-0.5:39.5]
  set yrange [39.5:-0.5]
  set xtics 0, 5
  set ytics 0, 5
  set size ratio -1
  plot datafile every ::11201::12800 using 3:4:(finite($5)) with image

  unset multiplot
  unset output
}
