/* bb_load.c - backbone weights: random initialisation, name mapping, batch-norm folding, file sources.
 *
 * Everything goes through one path: a list of (canonical name, tensor) is resolved unit by unit into the
 * engine's folded parameters. Random initialisation builds that list from the Philox rule below, so random
 * weights are folded exactly as loaded ones and the Python fixture generator (tests/fixtures/gen_backbone.py)
 * can reproduce them: canonical parameter i (torchvision state_dict order) uses stream i, element j counter j,
 * w = philox(seed, j, i), u = u01(w0), z = normal(w0, w1), and
 *   conv weight  z * sqrt(2 / fan_in)      conv bias  0.1 (2u - 1)
 *   bn weight    0.5 + 0.5 u               bn bias    0.1 (2u - 1)
 *   bn mean      0.1 z                     bn var     0.5 + u
 * each computed in double and rounded to float32 once. */
#include <stdarg.h>
#include <sys/stat.h>

#include "bb_internal.h"

/* ------------------------------------------------------------------ short lists for messages */

typedef struct { char buf[1536]; size_t len; int count; } bb_list;

static void list_add(bb_list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void list_add(bb_list *l, const char *fmt, ...) {
  if (l->count++ >= 10 || l->len + 8 >= sizeof l->buf) return; /* the first ten are enough to act on */
  if (l->len) l->len += (size_t)snprintf(l->buf + l->len, sizeof l->buf - l->len, ", ");
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
  va_end(ap);
  l->len += k > 0 ? (size_t)k : 0;
  if (l->len >= sizeof l->buf) l->len = sizeof l->buf - 1;
}

/* "a, b, c and 4 more" */
static const char *list_text(const bb_list *l, char *out, size_t n) {
  if (l->count > 10) snprintf(out, n, "%s and %d more", l->buf, l->count - 10);
  else snprintf(out, n, "%s", l->buf);
  return out;
}

static const char *shape_of(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* ------------------------------------------------------------------ source lookup */

typedef struct {
  const char *src;   /* name in the source */
  char *canon;       /* canonical name, NULL when unmappable */
  rn_tensor *t;
  bool used;
} bb_entry;

typedef struct {
  const rn_backbone *bb;
  bb_entry *e;
  int n;
  int *order; /* entries with a canonical name, sorted by it */
  int n_order;
  bb_list missing, shapes;
} bb_source;

static const bb_source *cmp_ctx;
static int cmp_canon(const void *a, const void *b) {
  return strcmp(cmp_ctx->e[*(const int *)a].canon, cmp_ctx->e[*(const int *)b].canon);
}

static bb_entry *find(bb_source *s, const char *name) {
  int lo = 0, hi = s->n_order - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(s->e[s->order[mid]].canon, name);
    if (!c) return &s->e[s->order[mid]];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

/* The entry `name` as a contiguous float32 CPU tensor of the given shape (new reference in *out), or NULL
 * in *out when absent or mis-shaped (recorded in the source's lists). */
static rn_status take(bb_source *s, const char *name, int ndim, const int64_t *shape, rn_tensor **out) {
  *out = NULL;
  bb_entry *e = find(s, name);
  if (!e) return RN_OK;
  e->used = true;
  rn_tensor *t = e->t;
  bool fits = t->ndim == ndim;
  for (int i = 0; fits && i < ndim; i++) fits = t->shape[i] == shape[i];
  if (!fits) {
    char a[64], b[64];
    if (strcmp(e->src, name)) list_add(&s->shapes, "%s (as %s) is %s, expected %s", e->src, name, shape_of(t->ndim, t->shape, a, sizeof a), shape_of(ndim, shape, b, sizeof b));
    else list_add(&s->shapes, "%s is %s, expected %s", name, shape_of(t->ndim, t->shape, a, sizeof a), shape_of(ndim, shape, b, sizeof b));
    return RN_OK;
  }
  if (t->dtype == RN_F32 && t->storage->device.type == RN_CPU) return rn_contig_nograd(out, t);
  rn_tensor *c = NULL, *f = NULL;
  rn_status st = rn_to_device(&c, t, rn_cpu());
  if (st == RN_OK) st = rn_to_dtype(&f, c, RN_F32);
  rn_tensor_release(c);
  if (st == RN_OK) st = rn_contig_nograd(out, f);
  rn_tensor_release(f);
  return st;
}

/* ------------------------------------------------------------------ units */

/* Batch norm `bn` of c channels as per-channel scale g/sqrt(var+eps) and shift beta - mean*scale (double).
 * *found: 0 none of its tensors present, 1 all present and fitting, -1 partly present (recorded). */
static rn_status take_bn(bb_source *s, const char *bn, int c, float eps, double **scale, double **shift, int *found) {
  static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  rn_tensor *t[4] = {NULL, NULL, NULL, NULL};
  int64_t shape[1] = {c};
  int present = 0;
  rn_status st = RN_OK;
  *scale = *shift = NULL;
  for (int i = 0; i < 4 && st == RN_OK; i++) {
    char name[BB_NAME];
    bb_fmt(name, "%s.%s", bn, suffix[i]);
    present += find(s, name) != NULL;
    st = take(s, name, 1, shape, &t[i]);
  }
  *found = 0;
  if (st == RN_OK && present) {
    *found = t[0] && t[1] && t[2] && t[3] ? 1 : -1;
    for (int i = 0; i < 4 && *found < 0; i++) {
      char name[BB_NAME];
      if (!find(s, bb_fmt(name, "%s.%s", bn, suffix[i]))) list_add(&s->missing, "%s", name);
    }
  }
  if (st == RN_OK && *found == 1) {
    *scale = malloc(sizeof **scale * (size_t)c);
    *shift = malloc(sizeof **shift * (size_t)c);
    if (!*scale || !*shift) st = rn_error(RN_ERR_OOM, "backbone: out of memory");
    for (int i = 0; st == RN_OK && i < c; i++) {
      double g = rn_f32(t[0])[i], b = rn_f32(t[1])[i], m = rn_f32(t[2])[i], v = rn_f32(t[3])[i];
      (*scale)[i] = g / sqrt(v + (double)eps);
      (*shift)[i] = b - m * (*scale)[i];
    }
  }
  for (int i = 0; i < 4; i++) rn_tensor_release(t[i]);
  return st;
}

static rn_status new_vec(rn_tensor **out, int64_t c) { return rn_tensor_empty(out, 1, &c, RN_F32, rn_cpu()); }

/* Resolves one unit into new engine tensors np[u->w], np[u->b]; absent pieces leave them NULL. */
static rn_status resolve_unit(bb_source *s, const bb_unit *u, rn_tensor **np) {
  const rn_backbone *bb = s->bb;
  char name[BB_NAME];
  double *scale = NULL, *shift = NULL;
  int found = 0;
  rn_status st = RN_OK;
  if (!u->is_conv) { /* affine: from a batch norm, or engine-exported scale/shift */
    int64_t c = u->o;
    RN_TRY(take_bn(s, u->bn, u->o, bb->eps, &scale, &shift, &found));
    if (found == 1) {
      st = new_vec(&np[u->w], c);
      if (st == RN_OK) st = new_vec(&np[u->b], c);
      for (int64_t i = 0; st == RN_OK && i < c; i++) {
        rn_f32(np[u->w])[i] = (float)scale[i];
        rn_f32(np[u->b])[i] = (float)shift[i];
      }
    } else if (found == 0) {
      st = take(s, bb_fmt(name, "%s.scale", u->prefix), 1, &c, &np[u->w]);
      if (st == RN_OK) st = take(s, bb_fmt(name, "%s.shift", u->prefix), 1, &c, &np[u->b]);
      if (st == RN_OK && !np[u->w] && !np[u->b] && !find(s, bb_fmt(name, "%s.scale", u->prefix)))
        list_add(&s->missing, "%s.{weight,bias,running_mean,running_var}", u->bn);
    }
    free(scale);
    free(shift);
    return st;
  }
  int64_t wshape[4] = {u->o, u->cin_g, u->kh, u->kw}, c = u->o;
  rn_tensor *w = NULL, *b = NULL;
  RN_TRY(take(s, bb_fmt(name, "%s.weight", u->prefix), 4, wshape, &w));
  if (!w && !find(s, name)) list_add(&s->missing, "%s", name);
  if (u->b >= 0) st = take(s, bb_fmt(name, "%s.bias", u->prefix), 1, &c, &b);
  bool bias_there = u->b >= 0 && find(s, name);
  if (st == RN_OK && u->bn[0]) st = take_bn(s, u->bn, u->o, bb->eps, &scale, &shift, &found);
  if (st == RN_OK && found == 1 && w) { /* fold: w' = w * scale, b' = (b - mean) * scale + beta */
    rn_tensor *fw = NULL, *fb = NULL;
    st = rn_tensor_empty(&fw, 4, wshape, RN_F32, rn_cpu());
    if (st == RN_OK) st = new_vec(&fb, c);
    if (st == RN_OK) {
      int64_t per = u->cin_g * u->kh * u->kw;
      const float *src = rn_f32(w);
      float *dw = rn_f32(fw), *db = rn_f32(fb);
      for (int64_t o = 0; o < c; o++) {
        for (int64_t k = 0; k < per; k++) dw[o * per + k] = (float)(src[o * per + k] * scale[o]);
        db[o] = (float)((b ? rn_f32(b)[o] : 0.0) * scale[o] + shift[o]);
      }
      np[u->w] = fw, np[u->b] = fb;
      fw = fb = NULL;
    }
    rn_tensor_release(fw);
    rn_tensor_release(fb);
  } else if (st == RN_OK && found == 0) {
    np[u->w] = w, w = NULL;
    if (u->b >= 0) {
      np[u->b] = b, b = NULL;
      if (!np[u->b] && !bias_there) {
        if (u->bn[0]) list_add(&s->missing, "%s.bias (or %s.{weight,bias,running_mean,running_var})", u->prefix, u->bn);
        else list_add(&s->missing, "%s.bias", u->prefix);
      }
    }
  }
  rn_tensor_release(w);
  rn_tensor_release(b);
  free(scale);
  free(shift);
  return st;
}

/* ------------------------------------------------------------------ loading */

static bool is_ignored(const rn_backbone *bb, const char *canon) {
  size_t n = strlen(canon), k = strlen("num_batches_tracked");
  if (n >= k && !strcmp(canon + n - k, "num_batches_tracked")) return true;
  for (int i = 0; bb->ignore && bb->ignore[i]; i++)
    if (!strncmp(canon, bb->ignore[i], strlen(bb->ignore[i]))) return true;
  return false;
}

static bool ready_with(const rn_backbone *bb, rn_tensor *const *np, int stage) {
  for (int i = 0; i < bb->n_param; i++)
    if (bb->param[i].stage <= stage && !np[i]) return false;
  return true;
}

/* The shared loader; `what` names the source in messages. */
static rn_status load_named(rn_backbone *bb, const char *what, int n, const char *const *names,
                            rn_tensor *const *tensors, const rn_backbone_load_opts *opts, rn_backbone_load_report *rep) {
  if (rep) memset(rep, 0, sizeof *rep);
  if (!bb) return rn_error(RN_ERR_ARG, "backbone load: backbone is NULL");
  if (n < 0 || (n > 0 && (!names || !tensors)))
    return rn_error(RN_ERR_ARG, "backbone %s: load from %s: bad tensor list (n = %d)", bb->arch, what, n);
  for (int i = 0; i < n; i++)
    if (!names[i] || !tensors[i])
      return rn_error(RN_ERR_ARG, "backbone %s: load from %s: entry %d has no %s", bb->arch, what, i, names[i] ? "tensor" : "name");
  bb_source s;
  memset(&s, 0, sizeof s);
  s.bb = bb;
  s.n = n;
  s.e = calloc((size_t)n + 1, sizeof *s.e);
  s.order = calloc((size_t)n + 1, sizeof *s.order);
  char **canon = calloc((size_t)n + 1, sizeof *canon);
  rn_tensor **np = calloc((size_t)bb->n_param + 1, sizeof *np);
  rn_status st = s.e && s.order && canon && np ? RN_OK : rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  if (st == RN_OK) st = bb->translate(bb, n, names, canon);
  for (int i = 0; st == RN_OK && i < n; i++) {
    s.e[i] = (bb_entry){names[i], canon[i], tensors[i], false};
    if (canon[i]) s.order[s.n_order++] = i;
  }
  if (st == RN_OK) {
    cmp_ctx = &s;
    qsort(s.order, (size_t)s.n_order, sizeof *s.order, cmp_canon);
    for (int k = 1; k < s.n_order; k++) {
      bb_entry *a = &s.e[s.order[k - 1]], *b = &s.e[s.order[k]];
      if (!strcmp(a->canon, b->canon)) {
        st = rn_error(RN_ERR_FORMAT, "backbone %s: load from %s: \"%s\" and \"%s\" both map to %s", bb->arch, what,
                      a->src, b->src, a->canon);
        break;
      }
    }
  }
  for (int u = 0; st == RN_OK && u < bb->n_unit; u++) st = resolve_unit(&s, &bb->unit[u], np);

  bb_list unmapped = {{0}, 0, 0}, ignored = {{0}, 0, 0};
  int used = 0;
  for (int i = 0; st == RN_OK && i < n; i++) {
    bb_entry *e = &s.e[i];
    if (e->used) used++;
    else if (e->canon && is_ignored(bb, e->canon)) list_add(&ignored, "%s", e->src);
    else if (e->canon && strcmp(e->canon, e->src)) list_add(&unmapped, "%s (as %s)", e->src, e->canon);
    else list_add(&unmapped, "%s", e->src);
  }
  /* stages that end up incomplete; an error only for stages the caller asked for */
  bb_list absent = {{0}, 0, 0};
  bool requested_absent = false;
  int ready = 0;
  for (int k = 0; st == RN_OK && k < bb->n_stage; k++) {
    bool ok = ready_with(bb, np, k);
    ready += ok;
    if (!ok) list_add(&absent, "%s", bb->stage[k].name);
    for (int j = 0; !ok && j < bb->n_sel; j++) requested_absent |= bb->sel[j] == k;
  }
  char t1[1800], t2[1800], t3[1800];
  bool allow = opts && opts->allow_unmapped;
  if (st == RN_OK && used == 0 && n > 0)
    st = rn_error(RN_ERR_FORMAT, "backbone %s: load from %s: none of its %d tensors is a %s weight (names: %s)",
                  bb->arch, what, n, bb->arch, list_text(unmapped.count ? &unmapped : &ignored, t1, sizeof t1));
  else if (st == RN_OK && s.shapes.count)
    st = rn_error(unmapped.count && !allow ? RN_ERR_FORMAT : RN_ERR_SHAPE,
                  "backbone %s: load from %s: %d tensor(s) do not fit: %s%s%s", bb->arch, what, s.shapes.count,
                  list_text(&s.shapes, t1, sizeof t1), unmapped.count && !allow ? "; unmapped names: " : "",
                  unmapped.count && !allow ? list_text(&unmapped, t2, sizeof t2) : "");
  else if (st == RN_OK && unmapped.count && !allow)
    st = rn_error(RN_ERR_FORMAT, "backbone %s: load from %s: %d name(s) map to no %s weight: %s", bb->arch, what,
                  unmapped.count, bb->arch, list_text(&unmapped, t1, sizeof t1));
  else if (st == RN_OK && used == 0)
    st = rn_error(RN_ERR_FORMAT, "backbone %s: load from %s: no tensors", bb->arch, what);
  else if (st == RN_OK && requested_absent)
    st = rn_error(RN_ERR_FORMAT, "backbone %s: load from %s: requested stage(s) %s lack weights (missing %s)", bb->arch,
                  what, list_text(&absent, t1, sizeof t1), list_text(&s.missing, t2, sizeof t2));

  if (st == RN_OK) st = bb_params_to_device(bb, np, bb->n_param); /* a backbone on a device loads onto it */
  if (st == RN_OK) { /* commit */
    int loaded = 0;
    bb->pending_init = false;
    bb_packed_free(bb); /* copies of the weights being replaced */
    for (int i = 0; i < bb->n_param; i++) {
      rn_tensor_release(bb->param[i].t);
      bb->param[i].t = np[i];
      loaded += np[i] != NULL;
      np[i] = NULL;
    }
    if (rep) {
      rep->loaded = loaded, rep->ignored = ignored.count, rep->unmapped = unmapped.count, rep->stages_ready = ready;
      size_t cap = 3 * sizeof t1 + 256;
      rep->text = malloc(cap);
      if (rep->text) {
        int k = snprintf(rep->text, cap, "%s from %s: %d weights loaded, %d source tensors ignored%s%s", bb->arch, what,
                         loaded, ignored.count, ignored.count ? " (" : "", ignored.count ? list_text(&ignored, t1, sizeof t1) : "");
        if (ignored.count) k += snprintf(rep->text + k, cap - (size_t)k, ")");
        if (unmapped.count) k += snprintf(rep->text + k, cap - (size_t)k, "; unmapped: %s", list_text(&unmapped, t2, sizeof t2));
        if (absent.count)
          snprintf(rep->text + k, cap - (size_t)k, "; stages without weights: %s (missing %s)",
                   list_text(&absent, t1, sizeof t1), list_text(&s.missing, t3, sizeof t3));
      }
    }
  }
  for (int i = 0; np && i < bb->n_param; i++) rn_tensor_release(np[i]);
  for (int i = 0; canon && i < n; i++) free(canon[i]);
  free(np);
  free(canon);
  free(s.order);
  free(s.e);
  return st;
}

rn_status rn_backbone_load(rn_backbone *bb, int n, const char *const *names, rn_tensor *const *tensors,
                           const rn_backbone_load_opts *opts, rn_backbone_load_report *report) {
  return load_named(bb, "tensor list", n, names, tensors, opts, report);
}

void rn_backbone_report_free(rn_backbone_load_report *r) {
  if (!r) return;
  free(r->text);
  r->text = NULL;
}

rn_status bb_translate_identity(const rn_backbone *bb, int n, const char *const *names, char **canon) {
  for (int i = 0; i < n; i++)
    if (!(canon[i] = strdup(names[i]))) return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  return RN_OK;
}

/* ------------------------------------------------------------------ random init */

static double rule_value(bb_src_kind kind, int fan_in, uint32_t w0, uint32_t w1) {
  double u = rn_u01(w0);
  switch (kind) {
    case SRC_CONV_W: return (double)rn_normal_from(w0, w1) * sqrt(2.0 / fan_in);
    case SRC_CONV_B: return 0.1 * (2.0 * u - 1.0);
    case SRC_BN_W: return 0.5 + 0.5 * u;
    case SRC_BN_B: return 0.1 * (2.0 * u - 1.0);
    case SRC_BN_MEAN: return 0.1 * (double)rn_normal_from(w0, w1);
    case SRC_BN_VAR: return 0.5 + u;
  }
  return 0;
}

rn_status bb_ensure_init(rn_backbone *bb) {
  if (!bb->pending_init) return RN_OK;
  return bb_random_init(bb);
}

rn_status bb_random_init(rn_backbone *bb) {
  const char **names = calloc((size_t)bb->n_src + 1, sizeof *names);
  rn_tensor **ts = calloc((size_t)bb->n_src + 1, sizeof *ts);
  rn_status st = names && ts ? RN_OK : rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  for (int i = 0; st == RN_OK && i < bb->n_src; i++) {
    const bb_src *s = &bb->src[i];
    names[i] = s->name;
    st = rn_tensor_empty(&ts[i], s->ndim, s->shape, RN_F32, rn_cpu());
    if (st != RN_OK) break;
    float *p = rn_f32(ts[i]);
    int64_t n = rn_tensor_numel(ts[i]);
    uint64_t seed = bb->seed, stream = (uint64_t)i;
#pragma omp parallel for if (n > 65536)
    for (int64_t j = 0; j < n; j++) {
      uint32_t w[4];
      rn_philox(seed, (uint64_t)j, stream, w);
      p[j] = (float)rule_value(s->kind, s->fan_in, w[0], w[1]);
    }
  }
  /* canonical names of the arch itself: the identity translation, whatever the arch's other namings */
  bb_translate_fn keep = bb->translate;
  bb->translate = bb_translate_identity;
  int saved_sel = bb->n_sel;
  bb->n_sel = 0;
  if (st == RN_OK) st = load_named(bb, "random init", bb->n_src, names, ts, NULL, NULL);
  bb->n_sel = saved_sel;
  bb->translate = keep;
  for (int i = 0; ts && i < bb->n_src; i++) rn_tensor_release(ts[i]);
  free(ts);
  free(names);
  return st;
}

/* ------------------------------------------------------------------ file sources */

/* HDF5 and .npy-folder names use '/' where the engine uses '.'. */
static char *dotted(const char *s) {
  while (*s == '/') s++;
  char *d = strdup(s);
  for (char *p = d; p && *p; p++)
    if (*p == '/') *p = '.';
  return d;
}

static rn_status load_owned(rn_backbone *bb, const char *what, int n, char **names, rn_tensor **ts,
                            const rn_backbone_load_opts *opts, rn_backbone_load_report *rep) {
  rn_status st = load_named(bb, what, n, (const char *const *)names, ts, opts, rep);
  for (int i = 0; i < n; i++) {
    free(names[i]);
    rn_tensor_release(ts[i]);
  }
  free(names);
  free(ts);
  return st;
}

rn_status rn_backbone_load_tensorset(rn_backbone *bb, rn_tensorset *s, const rn_backbone_load_opts *opts,
                                     rn_backbone_load_report *report) {
  if (report) memset(report, 0, sizeof *report);
  if (!bb || !s) return rn_error(RN_ERR_ARG, "backbone load: %s is NULL", bb ? "tensor set" : "backbone");
  int n = rn_tensorset_count(s);
  char **names = calloc((size_t)n + 1, sizeof *names);
  rn_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
  if (!names || !ts) {
    free(names);
    free(ts);
    return rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  }
  rn_status st = rn_tensorset_load_all(s, ts);
  for (int i = 0; st == RN_OK && i < n; i++)
    if (!(names[i] = dotted(rn_tensorset_name(s, i)))) st = rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  if (st != RN_OK) {
    for (int i = 0; i < n; i++) {
      free(names[i]);
      rn_tensor_release(ts[i]);
    }
    free(names);
    free(ts);
    return st;
  }
  return load_owned(bb, rn_tensorset_path(s), n, names, ts, opts, report);
}

rn_status rn_backbone_load_h5(rn_backbone *bb, rn_h5file *f, const char *prefix, const rn_backbone_load_opts *opts,
                              rn_backbone_load_report *report) {
  if (report) memset(report, 0, sizeof *report);
  if (!bb || !f) return rn_error(RN_ERR_ARG, "backbone load: %s is NULL", bb ? "HDF5 file" : "backbone");
  while (prefix && *prefix == '/') prefix++;
  size_t plen = prefix ? strlen(prefix) : 0;
  while (plen && prefix[plen - 1] == '/') plen--;
  char **all = NULL;
  int count = 0;
  RN_TRY(rn_h5_list(f, &all, &count));
  char **names = calloc((size_t)count + 1, sizeof *names);
  rn_tensor **ts = calloc((size_t)count + 1, sizeof *ts);
  int n = 0;
  rn_status st = names && ts ? RN_OK : rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
  for (int i = 0; st == RN_OK && i < count; i++) {
    const char *p = all[i];
    while (*p == '/') p++;
    if (plen && (strncmp(p, prefix, plen) || p[plen] != '/')) continue;
    st = rn_h5_read_tensor(&ts[n], f, all[i], -1, NULL);
    if (st == RN_OK && !(names[n] = dotted(p + (plen ? plen + 1 : 0))))
      st = rn_error(RN_ERR_OOM, "backbone %s: out of memory", bb->arch);
    if (ts[n] || names[n]) n++;
  }
  rn_h5_names_free(all, count);
  if (st == RN_OK && n == 0)
    st = rn_error(RN_ERR_FORMAT, "backbone %s: %s has no datasets under \"/%.*s\"", bb->arch, rn_h5_path(f), (int)plen,
                  prefix ? prefix : "");
  if (st != RN_OK) {
    for (int i = 0; i < n; i++) {
      free(names ? names[i] : NULL);
      rn_tensor_release(ts ? ts[i] : NULL);
    }
    free(names);
    free(ts);
    return st;
  }
  return load_owned(bb, rn_h5_path(f), n, names, ts, opts, report);
}

rn_status rn_backbone_load_file(rn_backbone *bb, const char *path, const rn_backbone_load_opts *opts,
                                rn_backbone_load_report *report) {
  if (report) memset(report, 0, sizeof *report);
  if (!bb || !path) return rn_error(RN_ERR_ARG, "backbone load: %s is NULL", bb ? "path" : "backbone");
  struct stat sb;
  if (stat(path, &sb) != 0) return rn_error(RN_ERR_IO, "backbone %s: cannot open weights %s", bb->arch, path);
  unsigned char magic[8] = {0};
  if (!S_ISDIR(sb.st_mode)) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return rn_error(RN_ERR_IO, "backbone %s: cannot open weights %s", bb->arch, path);
    size_t got = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    if (got == sizeof magic && !memcmp(magic, "\x89HDF\r\n\x1a\n", 8)) {
      rn_h5file *f = NULL;
      RN_TRY(rn_h5_open(&f, path));
      rn_status st = rn_backbone_load_h5(bb, f, NULL, opts, report);
      rn_h5_close(f);
      return st;
    }
  }
  rn_tensorset *s = NULL;
  RN_TRY(rn_tensorset_open(&s, path));
  rn_status st = rn_backbone_load_tensorset(bb, s, opts, report);
  rn_tensorset_close(s);
  return st;
}
