/* test_dataset_loader.c - threaded batching: the same seed gives the same batches for 0, 1 and 3 workers,
 * batches equal item-by-item loads, drop_last, a worker's decode error surfaces naming the file (and later
 * batches still come), early stops and immediate frees never hang, and bad options fail clearly. */
#include <time.h>

#include "test_dataset_util.h"

static char *root;

/* All batches of one pass: indices (concatenated) and images; returns the batch count. */
static int64_t run(rn_dataset *ds, int64_t batch, int shuffle, uint64_t seed, int workers, int drop_last,
                   int64_t *idx, float *pix, int64_t *last_size) {
  rn_rng g;
  rn_rng_init(&g, seed, 0);
  rn_loader_opts o = rn_loader_opts_default();
  o.batch = batch, o.shuffle = shuffle, o.rng = &g, o.workers = workers, o.drop_last = drop_last;
  rn_loader *ld = NULL;
  if (!CHECK_OK(rn_loader_new(&ld, ds, &o))) return -1;
  CHECK(rn_loader_workers(ld) == workers);
  int64_t nb = 0, pos = 0, per = 3 * 8 * 8;
  rn_batch b;
  while (CHECK_OK(rn_loader_next(ld, &b)) && b.images) {
    CHECK(b.images->ndim == 4 && b.images->shape[0] == b.size && b.images->shape[1] == 3 && b.images->shape[2] == 8);
    CHECK(b.masks->ndim == 4 && b.masks->shape[1] == 1 && b.labels->dtype == RN_I64 && b.labels->shape[0] == b.size);
    for (int64_t i = 0; i < b.size; i++, pos++) {
      idx[pos] = b.indices[i];
      memcpy(pix + pos * per, rn_f32(b.images) + i * per, (size_t)per * sizeof(float));
    }
    *last_size = b.size;
    nb++;
    rn_batch_clear(&b);
  }
  CHECK(nb == rn_loader_num_batches(ld));
  rn_loader_free(ld);
  return nb;
}

static void determinism(rn_dataset *ds) {
  enum { N = 23 };
  static int64_t idx[4][N];
  static float pix[4][N * 192];
  int64_t last = 0;
  int workers[3] = {0, 1, 3};
  for (int w = 0; w < 3; w++) CHECK(run(ds, 5, 1, 7, workers[w], 0, idx[w], pix[w], &last) == 5 && last == 3);
  CHECK(memcmp(idx[0], idx[1], sizeof idx[0]) == 0 && memcmp(idx[0], idx[2], sizeof idx[0]) == 0);
  CHECK(memcmp(pix[0], pix[1], sizeof pix[0]) == 0 && memcmp(pix[0], pix[2], sizeof pix[0]) == 0);
  int seen[N] = {0}, identity = 1;
  for (int i = 0; i < N; i++) seen[idx[0][i]]++, identity &= idx[0][i] == i;
  int perm = 1;
  for (int i = 0; i < N; i++) perm &= seen[i] == 1;
  CHECK(perm && !identity);
  /* another seed, another order; no shuffle, the dataset's order */
  CHECK(run(ds, 5, 1, 8, 2, 0, idx[3], pix[3], &last) == 5);
  CHECK(memcmp(idx[0], idx[3], sizeof idx[0]) != 0);
  CHECK(run(ds, 4, 0, 7, 2, 0, idx[3], pix[3], &last) == 6 && last == 3);
  int ordered = 1;
  for (int i = 0; i < N; i++) ordered &= idx[3][i] == i;
  CHECK(ordered);
  /* batches hold exactly what rn_dataset_load gives */
  for (int i = 0; i < N; i += 7) {
    rn_tensor *img = NULL;
    if (CHECK_OK(rn_dataset_load(ds, i, &img, NULL)))
      CHECK(memcmp(rn_f32(img), pix[3] + i * 192, 192 * sizeof(float)) == 0);
    rn_tensor_release(img);
  }
  /* drop_last */
  CHECK(run(ds, 5, 1, 7, 3, 1, idx[3], pix[3], &last) == 4 && last == 5);
  CHECK(run(ds, 30, 0, 0, 2, 1, idx[3], pix[3], &last) == 0);
  CHECK(run(ds, 30, 0, 0, 2, 0, idx[3], pix[3], &last) == 1 && last == N);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void early_stop(rn_dataset *ds) {
  double t0 = now();
  for (int rep = 0; rep < 12; rep++) {
    rn_loader_opts o = rn_loader_opts_default();
    o.batch = 2, o.workers = 1 + rep % 4, o.prefetch = 1 + rep % 3, o.shuffle = rep & 1;
    rn_loader *ld = NULL;
    if (!CHECK_OK(rn_loader_new(&ld, ds, &o))) continue;
    for (int k = 0; k < rep % 3; k++) {
      rn_batch b;
      CHECK_OK(rn_loader_next(ld, &b));
      CHECK(b.images != NULL);
      rn_batch_clear(&b);
    }
    rn_loader_free(ld); /* workers blocked on a full queue or mid-batch must all exit */
  }
  CHECK(now() - t0 < 20);
  rn_loader_free(NULL);
  rn_batch_clear(NULL);
}

static void errors(void) {
  tmake_mvtec(root, "bad", 6);
  twrite_text(tpath(root, "bad/train/good/003.png"), "\x89PNG\r\n\x1a\n truncated");
  rn_dataset_opts dopt = rn_dataset_opts_default();
  dopt.height = dopt.width = 8;
  rn_dataset *ds = NULL;
  if (!CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "bad", &dopt))) return;
  for (int workers = 0; workers < 3; workers += 2) {
    rn_loader_opts o = rn_loader_opts_default();
    o.batch = 2, o.workers = workers;
    rn_loader *ld = NULL;
    if (!CHECK_OK(rn_loader_new(&ld, ds, &o))) continue;
    rn_batch b;
    CHECK_OK(rn_loader_next(ld, &b));
    rn_batch_clear(&b);
    CHECK_ERR(rn_loader_next(ld, &b), RN_ERR_FORMAT, "bad/train/good/003.png"); /* batch 2 holds 002, 003 */
    CHECK(b.images == NULL);
    CHECK_OK(rn_loader_next(ld, &b)); /* batch 3 still comes */
    CHECK(b.images != NULL && b.indices[0] == 4);
    rn_batch_clear(&b);
    CHECK_OK(rn_loader_next(ld, &b));
    CHECK(b.images == NULL);
    rn_loader_free(ld);
  }
  /* the loader keeps its dataset alive */
  rn_loader *ld = NULL;
  rn_loader_opts o = rn_loader_opts_default();
  o.batch = 6;
  CHECK_OK(rn_loader_new(&ld, ds, &o));
  rn_dataset_release(ds);
  rn_batch b;
  CHECK_ERR(rn_loader_next(ld, &b), RN_ERR_FORMAT, "003.png");
  rn_loader_free(ld);
  /* bad options */
  ds = NULL;
  CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "bad", &dopt));
  o.batch = 0;
  CHECK_ERR(rn_loader_new(&ld, ds, &o), RN_ERR_ARG, "batch size");
  o.batch = 2, o.workers = 1000;
  CHECK_ERR(rn_loader_new(&ld, ds, &o), RN_ERR_ARG, "workers");
  CHECK_ERR(rn_loader_new(&ld, NULL, NULL), RN_ERR_ARG, "dataset");
  rn_dataset_release(ds);
  dopt.height = dopt.width = 0;
  ds = NULL;
  CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "bad", &dopt));
  CHECK_ERR(rn_loader_new(&ld, ds, NULL), RN_ERR_ARG, "size");
  rn_dataset_release(ds);
  int w = rn_data_default_workers();
  CHECK(w >= 1 && w <= 4);
}

int main(void) {
  root = tmake_tmp("dataset_loader");
  if (!CHECK(root != NULL)) return test_finish("dataset_loader");
  for (int i = 0; i < 23; i++) twrite_image(tpath(root, "cat/train/good/%03d.png", i), 10 + i % 5, 12, i % 2 ? 1 : 3, i);
  rn_dataset_opts o = rn_dataset_opts_default();
  o.height = o.width = 8;
  rn_dataset *ds = NULL;
  if (CHECK_OK(rn_dataset_open(&ds, RN_DATA_MVTEC, root, "cat", &o)) && CHECK(rn_dataset_size(ds) == 23)) {
    determinism(ds);
    early_stop(ds);
  }
  rn_dataset_release(ds);
  errors();
  trm_rf(root);
  return test_finish("dataset_loader");
}
