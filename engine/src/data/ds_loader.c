/* ds_loader.c - batches decoded ahead by worker threads.
 *
 * The order (a permutation drawn on the caller's thread) is fixed before any worker starts, so the batches
 * depend only on the seed, never on the worker count or timing. Workers claim whole batches in order; batch
 * k goes to slot k % cap, and a worker may claim k only while k < next_take + cap, which bounds the queue and
 * guarantees slot k % cap is free (batch k - cap has been taken). The consumer waits for its batch in order.
 * Shutdown sets `stop`; workers check it between items, so a join waits for at most one item per worker. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ds_internal.h"

enum { SLOT_EMPTY = 0, SLOT_READY };

typedef struct {
  int state;
  rn_tensor *images, *masks, *labels;
  rn_status st;
  char err[512];
} slot;

struct rn_loader {
  rn_dataset *ds;
  int64_t *order, n, batch, nbatches;
  int nworkers, nthreads, cap;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t work, ready;
  int64_t next_claim, next_take;
  int stop;
  slot *slots;
};

int rn_data_default_workers(void) {
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c < 1 ? 1 : c < 4 ? (int)c : 4;
}

rn_loader_opts rn_loader_opts_default(void) {
  rn_loader_opts o;
  memset(&o, 0, sizeof o);
  o.batch = 16;
  o.workers = -1;
  return o;
}

static void slot_clear(slot *s) {
  rn_tensor_release(s->images);
  rn_tensor_release(s->masks);
  rn_tensor_release(s->labels);
  s->images = s->masks = s->labels = NULL;
  s->state = SLOT_EMPTY;
  s->st = RN_OK;
  s->err[0] = '\0';
}

static int64_t batch_len(const rn_loader *ld, int64_t k) {
  int64_t start = k * ld->batch, len = ld->n - start;
  return len < ld->batch ? len : ld->batch;
}

static int stopping(rn_loader *ld) {
  pthread_mutex_lock(&ld->mu);
  int s = ld->stop;
  pthread_mutex_unlock(&ld->mu);
  return s;
}

/* Decodes batch k into s (any thread). A decode error is kept in s with its message. */
static void build(rn_loader *ld, int64_t k, slot *s, int check_stop) {
  int64_t B = batch_len(ld, k), H = ld->ds->opts.height, W = ld->ds->opts.width;
  int64_t si[4] = {B, 3, H, W}, sm[4] = {B, 1, H, W}, sl[1] = {B};
  rn_status st = rn_tensor_empty(&s->images, 4, si, RN_F32, rn_cpu());
  if (st == RN_OK) st = rn_tensor_empty(&s->masks, 4, sm, RN_F32, rn_cpu());
  if (st == RN_OK) st = rn_tensor_empty(&s->labels, 1, sl, RN_I64, rn_cpu());
  const int64_t *idx = ld->order + k * ld->batch;
  for (int64_t b = 0; b < B && st == RN_OK; b++) {
    if (check_stop && stopping(ld)) break; /* the batch is dropped at shutdown anyway */
    rn_tensor *img = NULL, *m = NULL;
    st = rn_dataset_load(ld->ds, idx[b], &img, &m);
    if (st == RN_OK) {
      memcpy(rn_f32(s->images) + b * 3 * H * W, rn_f32(img), (size_t)(3 * H * W) * sizeof(float));
      memcpy(rn_f32(s->masks) + b * H * W, rn_f32(m), (size_t)(H * W) * sizeof(float));
      ((int64_t *)rn_tensor_data(s->labels))[b] = ld->ds->e.v[idx[b]].label;
    }
    rn_tensor_release(img);
    rn_tensor_release(m);
  }
  if (st != RN_OK) {
    rn_tensor_release(s->images);
    rn_tensor_release(s->masks);
    rn_tensor_release(s->labels);
    s->images = s->masks = s->labels = NULL;
    snprintf(s->err, sizeof s->err, "%s", rn_last_error());
  }
  s->st = st;
}

static void *worker(void *arg) {
  rn_loader *ld = arg;
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    while (!ld->stop && ld->next_claim < ld->nbatches && ld->next_claim >= ld->next_take + ld->cap)
      pthread_cond_wait(&ld->work, &ld->mu);
    if (ld->stop || ld->next_claim >= ld->nbatches) break;
    int64_t k = ld->next_claim++;
    pthread_mutex_unlock(&ld->mu);
    slot tmp = {0};
    build(ld, k, &tmp, 1);
    pthread_mutex_lock(&ld->mu);
    slot *s = &ld->slots[k % ld->cap];
    *s = tmp;
    s->state = SLOT_READY;
    pthread_cond_broadcast(&ld->ready);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

static void shutdown_workers(rn_loader *ld) {
  pthread_mutex_lock(&ld->mu);
  ld->stop = 1;
  pthread_cond_broadcast(&ld->work);
  pthread_cond_broadcast(&ld->ready);
  pthread_mutex_unlock(&ld->mu);
  for (int i = 0; i < ld->nthreads; i++) pthread_join(ld->threads[i], NULL);
  ld->nthreads = 0;
}

void rn_loader_free(rn_loader *ld) {
  if (!ld) return;
  shutdown_workers(ld);
  for (int i = 0; ld->slots && i < ld->cap; i++) slot_clear(&ld->slots[i]);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->work);
  pthread_cond_destroy(&ld->ready);
  free(ld->slots);
  free(ld->threads);
  free(ld->order);
  rn_dataset_release(ld->ds);
  free(ld);
}

rn_status rn_loader_new(rn_loader **out, rn_dataset *ds, const rn_loader_opts *opts) {
  if (!out) return rn_error(RN_ERR_ARG, "loader: NULL output pointer");
  *out = NULL;
  rn_loader_opts def = rn_loader_opts_default();
  const rn_loader_opts *o = opts ? opts : &def;
  if (!ds) return rn_error(RN_ERR_ARG, "loader: NULL dataset");
  if (o->batch <= 0) return rn_error(RN_ERR_ARG, "loader: batch size must be > 0, got %lld", (long long)o->batch);
  if (ds->opts.height <= 0 || ds->opts.width <= 0)
    return rn_error(RN_ERR_ARG, "loader: the dataset keeps each image's own size; open it with a size (e.g. 256) "
                                "to batch it");
  if (o->workers > 256) return rn_error(RN_ERR_ARG, "loader: %d workers is too many (at most 256)", o->workers);
  rn_loader *ld = calloc(1, sizeof *ld);
  if (!ld) return rn_error(RN_ERR_OOM, "loader: out of memory");
  pthread_mutex_init(&ld->mu, NULL);
  pthread_cond_init(&ld->work, NULL);
  pthread_cond_init(&ld->ready, NULL);
  ld->ds = rn_dataset_retain(ds);
  ld->n = ds->e.n;
  ld->batch = o->batch;
  ld->nbatches = o->drop_last ? ld->n / o->batch : (ld->n + o->batch - 1) / o->batch;
  ld->nworkers = o->workers < 0 ? rn_data_default_workers() : o->workers;
  ld->cap = o->prefetch > 0 ? o->prefetch : 2 * (ld->nworkers > 0 ? ld->nworkers : 1);
  ld->order = malloc((size_t)(ld->n ? ld->n : 1) * sizeof *ld->order);
  ld->slots = calloc((size_t)ld->cap, sizeof *ld->slots);
  ld->threads = calloc((size_t)(ld->nworkers ? ld->nworkers : 1), sizeof *ld->threads);
  rn_status st = ld->order && ld->slots && ld->threads ? RN_OK : rn_error(RN_ERR_OOM, "loader: out of memory");
  if (st == RN_OK && o->shuffle) {
    rn_rng local;
    rn_rng *g = o->rng;
    if (!g) rn_rng_init(&local, 0, 0), g = &local;
    rn_tensor *perm = NULL;
    st = rn_rng_permutation(g, &perm, ld->n);
    if (st == RN_OK) memcpy(ld->order, rn_tensor_data(perm), (size_t)ld->n * sizeof *ld->order);
    rn_tensor_release(perm);
  } else {
    for (int64_t i = 0; i < ld->n; i++) ld->order[i] = i;
  }
  for (int i = 0; st == RN_OK && i < ld->nworkers; i++) {
    if (pthread_create(&ld->threads[i], NULL, worker, ld) != 0)
      st = rn_error(RN_ERR_OOM, "loader: cannot start worker thread %d of %d", i + 1, ld->nworkers);
    else
      ld->nthreads++;
  }
  if (st != RN_OK) { rn_loader_free(ld); return st; }
  *out = ld;
  return RN_OK;
}

rn_status rn_loader_next(rn_loader *ld, rn_batch *b) {
  if (!ld || !b) return rn_error(RN_ERR_ARG, "loader next: NULL argument");
  memset(b, 0, sizeof *b);
  pthread_mutex_lock(&ld->mu);
  int64_t k = ld->next_take;
  if (k >= ld->nbatches) { pthread_mutex_unlock(&ld->mu); return RN_OK; }
  slot got = {0};
  if (ld->nworkers == 0) { /* synchronous */
    pthread_mutex_unlock(&ld->mu);
    build(ld, k, &got, 0);
    pthread_mutex_lock(&ld->mu);
  } else {
    slot *s = &ld->slots[k % ld->cap];
    while (s->state != SLOT_READY && !ld->stop) pthread_cond_wait(&ld->ready, &ld->mu);
    got = *s;
    memset(s, 0, sizeof *s);
  }
  ld->next_take++;
  pthread_cond_broadcast(&ld->work);
  pthread_mutex_unlock(&ld->mu);
  if (got.st != RN_OK) {
    rn_status st = rn_error(got.st, "loader: batch %lld: %s", (long long)k + 1, got.err);
    slot_clear(&got);
    return st;
  }
  b->images = got.images;
  b->masks = got.masks;
  b->labels = got.labels;
  b->indices = ld->order + k * ld->batch;
  b->size = batch_len(ld, k);
  return RN_OK;
}

int64_t rn_loader_num_batches(const rn_loader *ld) { return ld ? ld->nbatches : 0; }
int rn_loader_workers(const rn_loader *ld) { return ld ? ld->nworkers : 0; }

void rn_batch_clear(rn_batch *b) {
  if (!b) return;
  rn_tensor_release(b->images);
  rn_tensor_release(b->masks);
  rn_tensor_release(b->labels);
  memset(b, 0, sizeof *b);
}
