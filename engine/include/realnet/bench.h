/* bench.h - timing of the convolution kernels against the machine's sgemm rate (`realnet bench conv`).
 *
 *   rn_bench_row *rows = NULL; int n = 0; rn_bench_summary s;
 *   if (rn_bench_conv(8, 256, false, &rows, &n, &s) == RN_OK)
 *     printf("%d shapes, conv at %.0f%% of sgemm\n", n, 100 * s.conv_gflops / s.sgemm_gflops);
 *   free(rows);
 *
 * Runs on the CPU with the current thread count (rn_set_num_threads) and the convolution implementation
 * chosen by REALNET_CONV. Takes ~15 s (quick: ~3 s); other work on the machine skews the numbers.
 */
#ifndef REALNET_BENCH_H
#define REALNET_BENCH_H

#include <stdbool.h>

#include "status.h"

/* One distinct convolution shape of the network (batch and resolution as requested). */
typedef struct {
  int in_ch, out_ch, kernel, stride, pad;  /* square kernels */
  int in_h, in_w, out_h, out_w;
  int count;                               /* layers of the network with this shape */
  double gflop;                            /* per forward call: 2 * multiply-adds */
  double seconds;                          /* per forward call: the fastest of the timed repeats */
  double gflops;                           /* gflop / seconds */
} rn_bench_row;

typedef struct {
  double sgemm_gflops;          /* the reference: the faster of the two below */
  double openblas_gflops;       /* OpenBLAS cblas_sgemm on a large square product, its own threading */
  double onednn_sgemm_gflops;   /* oneDNN's dnnl_sgemm on the same product */
  double conv_gflops;           /* all conv layers together: sum(count*gflop) / sum(count*seconds) */
  double total_seconds;         /* sum(count*seconds): one forward through every conv layer */
  const char *conv_impl;        /* "onednn" or "im2col" */
  int threads;
} rn_bench_summary;

/* Times the forward pass of every distinct convolution shape of torchvision's wide_resnet50_2 (stem and
 * layer1..4) on [batch, 3, res, res] input: warm-up, then repeats for ~0.3 s per shape (quick: two timed
 * calls), and the sgemm rates in the same run. *rows (malloc'd, release with free) gets *n rows in network
 * order. Errors: RN_ERR_ARG for batch < 1 or res < 32, RN_ERR_OOM. */
rn_status rn_bench_conv(int batch, int res, bool quick, rn_bench_row **rows, int *n, rn_bench_summary *summary);

#endif
