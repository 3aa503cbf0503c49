"""Reproduce Figures 1-3 of Gatys, Ecker & Bethge (2015) and measure what the paper claims about them.

    python -m reproduction {fig1,fig2,fig3,all} --out DIR --images DIR [--size N] [--steps N] [--weights W]

- Fig. 1 (:mod:`reproduction.fig1`): content reconstructions from conv1_1 … conv5_1 of the Tübingen photo, and
  style reconstructions from the growing layer sets {conv1_1}, …, {conv1_1 … conv5_1} of The Starry Night and
  of the photo, all from white noise. Measured: PSNR and SSIM of each content reconstruction against the photo;
  the style loss E_l of each style reconstruction at every layer conv1_1 … conv5_1.
- Fig. 2 (:mod:`reproduction.fig2`): the photo in the style of each painting available, with the paper's α/β
  (1e-3 for B-D, 1e-4 for E-F). Measured: content and style loss of each panel.
- Fig. 3 (:mod:`reproduction.fig3`): the 5 x 4 grid, style layer sets A-E x α/β 1e-5 … 1e-2, for one painting.
  Measured: the content loss (conv4_2) and style loss (conv1_1 … conv5_1, w_l = 1/5) of every cell, re-evaluated
  with the same fixed weights so cells compare, and whether the trade-off is monotone in α/β along each row.

Every run writes PNGs, one labelled contact sheet per figure (:mod:`reproduction.sheets`), ``report.md`` and
``report.json`` (the same numbers, for tests and tools; :mod:`reproduction.report`). Before computing, a few
calibration steps give a time estimate; progress is shown per run. Seeds are fixed, so a rerun on the same
machine gives the same pictures.

This is a command run from a checkout, not part of the installed library: it drives :mod:`gatys` through its
public API; ``import gatys`` never imports it.
"""
