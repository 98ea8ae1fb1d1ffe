/* test_dataset_doctor.c - rn_dataset_check (`realnet doctor`): a clean synthetic category has no problems and
 * the right counts; a broken one reports each problem by path (missing mask, unpaired masks, a mask of the
 * wrong size, a corrupt image, an unreadable mask, an empty defect dir) with empty masks and stray train dirs as
 * warnings; folder and VisA findings; layout detection and category listing; a missing root fails. */
#include "test_dataset_util.h"

static char *root;

/* The problem of kind k whose path ends with tail, or NULL. */
static const rn_dataset_problem *find(const rn_dataset_problem *v, int64_t n, rn_problem_kind k, const char *tail) {
  for (int64_t i = 0; i < n; i++) {
    size_t a = strlen(v[i].path), b = strlen(tail);
    if (v[i].kind == k && a >= b && strcmp(v[i].path + a - b, tail) == 0) return &v[i];
  }
  return NULL;
}

static void clean(void) {
  tmake_mvtec(root, "ok", 4);
  rn_dataset_report *r = NULL;
  if (!CHECK_OK(rn_dataset_check(&r, RN_DATA_MVTEC, root, "ok", NULL, 2))) return;
  CHECK(r->n_problems == 0 && r->n_warnings == 0);
  CHECK(r->images == 9 && r->masks == 3 && r->n_counts == 4);
  CHECK(!strcmp(r->counts[0].split, "train") && !strcmp(r->counts[0].defect, "good") && r->counts[0].images == 4);
  CHECK(!strcmp(r->counts[1].defect, "crack") && r->counts[1].images == 2 && r->counts[1].masks == 2);
  rn_dataset_report_free(r);
  rn_dataset_report_free(NULL);
}

static void broken(void) {
  tmake_mvtec(root, "br", 3);
  remove(tpath(root, "br/ground_truth/crack/001_mask.png"));                        /* missing mask */
  twrite_mask(tpath(root, "br/ground_truth/crack/009_mask.png"), 16, 16, 0, 1, 0, 1); /* unpaired */
  twrite_mask(tpath(root, "br/ground_truth/ghost/000_mask.png"), 16, 16, 0, 1, 0, 1); /* no test/ghost */
  twrite_mask(tpath(root, "br/ground_truth/scratch/000_mask.png"), 10, 12, 0, 2, 0, 2); /* wrong size */
  twrite_text(tpath(root, "br/test/good/000.png"), "this is not a PNG file");          /* corrupt image */
  twrite_image(tpath(root, "br/test/hole/000.png"), 16, 16, 3, 1);
  twrite_text(tpath(root, "br/ground_truth/hole/000_mask.png"), "\x89PNG\r\n\x1a\n"); /* unreadable mask */
  tmkdirs(tpath(root, "br/test/dent"), 1);                                              /* empty defect dir */
  twrite_mask(tpath(root, "br/ground_truth/crack/000_mask.png"), 16, 16, 0, 0, 0, 0);  /* empty: warning */
  twrite_image(tpath(root, "br/train/bad/000.png"), 16, 16, 3, 1);                   /* stray: warning */
  rn_dataset_report *r = NULL;
  if (!CHECK_OK(rn_dataset_check(&r, RN_DATA_MVTEC, root, "br", NULL, 3))) return;
  const rn_dataset_problem *p = r->problems;
  int64_t n = r->n_problems;
  CHECK(find(p, n, RN_PROBLEM_MISSING_MASK, "br/test/crack/001.png") != NULL);
  CHECK(find(p, n, RN_PROBLEM_UNPAIRED_MASK, "br/ground_truth/crack/009_mask.png") != NULL);
  CHECK(find(p, n, RN_PROBLEM_UNPAIRED_MASK, "br/ground_truth/ghost/000_mask.png") != NULL);
  const rn_dataset_problem *sz = find(p, n, RN_PROBLEM_MASK_SIZE, "br/ground_truth/scratch/000_mask.png");
  CHECK(sz && strstr(sz->message, "12x10") && strstr(sz->message, "16x16"));
  CHECK(find(p, n, RN_PROBLEM_UNREADABLE, "br/test/good/000.png") != NULL);
  CHECK(find(p, n, RN_PROBLEM_UNREADABLE, "br/ground_truth/hole/000_mask.png") != NULL);
  CHECK(find(p, n, RN_PROBLEM_EMPTY_SPLIT, "br/test/dent") != NULL);
  CHECK(n == 7);
  for (int64_t i = 1; i < n; i++) CHECK(strcmp(p[i - 1].path, p[i].path) <= 0); /* sorted by path */
  CHECK(find(r->warnings, r->n_warnings, RN_PROBLEM_EMPTY_MASK, "br/ground_truth/crack/000_mask.png") != NULL);
  CHECK(find(r->warnings, r->n_warnings, RN_PROBLEM_LAYOUT, "br/train/bad") != NULL);
  CHECK(r->n_warnings == 2);
  CHECK(!strcmp(rn_problem_kind_name(RN_PROBLEM_MASK_SIZE), "mask size"));
  rn_dataset_report_free(r);
  /* an empty train split is a problem too */
  tmkdirs(tpath(root, "notrain/test/good"), 1);
  twrite_image(tpath(root, "notrain/test/good/000.png"), 8, 8, 3, 1);
  r = NULL;
  if (CHECK_OK(rn_dataset_check(&r, RN_DATA_MVTEC, root, "notrain", NULL, 1)))
    CHECK(r->n_problems == 1 && r->problems[0].kind == RN_PROBLEM_EMPTY_SPLIT);
  rn_dataset_report_free(r);
}

static void others(void) {
  /* folder: a mask nobody uses, an abnormal image without its mask */
  char fr[512];
  snprintf(fr, sizeof fr, "%s", tpath(root, "fold"));
  twrite_image(tpath(fr, "good/0.png"), 8, 8, 3, 1);
  twrite_image(tpath(fr, "bad/1.png"), 8, 8, 3, 2);
  twrite_image(tpath(fr, "bad/2.png"), 8, 8, 3, 3);
  twrite_mask(tpath(fr, "ground_truth/bad/1_mask.png"), 8, 8, 0, 2, 0, 2);
  twrite_mask(tpath(fr, "ground_truth/7.png"), 8, 8, 0, 2, 0, 2);
  rn_dataset_report *r = NULL;
  if (CHECK_OK(rn_dataset_check(&r, RN_DATA_FOLDER, fr, NULL, NULL, 2))) {
    CHECK(find(r->problems, r->n_problems, RN_PROBLEM_MISSING_MASK, "fold/bad/2.png") != NULL);
    CHECK(find(r->problems, r->n_problems, RN_PROBLEM_UNPAIRED_MASK, "fold/ground_truth/7.png") != NULL);
    CHECK(r->n_problems == 2);
  }
  rn_dataset_report_free(r);
  /* VisA: a listed file that is missing */
  char vr[512];
  snprintf(vr, sizeof vr, "%s", tpath(root, "visa"));
  twrite_image(tpath(vr, "c/n0.png"), 8, 8, 3, 1);
  twrite_image(tpath(vr, "c/a0.png"), 8, 8, 3, 1);
  twrite_text(tpath(vr, "split_csv/1cls.csv"),
              "object,split,label,image,mask\nc,train,normal,c/n0.png,\nc,test,anomaly,c/a0.png,c/m0.png\n"
              "c,test,normal,c/gone.png,\n");
  r = NULL;
  if (CHECK_OK(rn_dataset_check(&r, RN_DATA_VISA, vr, NULL, NULL, 1))) {
    CHECK(find(r->problems, r->n_problems, RN_PROBLEM_MISSING_MASK, "visa/c/a0.png") != NULL);
    CHECK(find(r->problems, r->n_problems, RN_PROBLEM_UNREADABLE, "visa/c/gone.png") != NULL);
    CHECK(r->n_problems == 2);
  }
  rn_dataset_report_free(r);
  /* detection and categories */
  rn_data_kind k = RN_DATA_FOLDER;
  CHECK_OK(rn_data_detect(tpath(root, "ok"), &k));
  CHECK(k == RN_DATA_MVTEC);
  CHECK_OK(rn_data_detect(root, &k)); /* a dataset root: by its first category */
  CHECK(k == RN_DATA_MVTEC);
  tmkdirs(tpath(root, "bt/01/train/ok"), 1);
  CHECK_OK(rn_data_detect(tpath(root, "bt"), &k));
  CHECK(k == RN_DATA_BTAD);
  char **names = NULL;
  int64_t nn = 0;
  if (CHECK_OK(rn_data_categories(RN_DATA_MVTEC, root, &names, &nn)))
    CHECK(nn == 3 && !strcmp(names[0], "br") && !strcmp(names[1], "notrain") && !strcmp(names[2], "ok"));
  free(names);
  CHECK_ERR(rn_data_detect(tpath(root, "fold/good"), &k), RN_ERR_FORMAT, "--dataset");
  /* fatal */
  CHECK_ERR(rn_dataset_check(&r, RN_DATA_MVTEC, "/nonexistent_rn_doctor", NULL, NULL, 1), RN_ERR_IO,
            "/nonexistent_rn_doctor");
  CHECK(r == NULL);
  CHECK_ERR(rn_dataset_check(&r, RN_DATA_VISA, fr, NULL, NULL, 1), RN_ERR_IO, "1cls.csv");
}

int main(void) {
  root = tmake_tmp("dataset_doctor");
  if (!CHECK(root != NULL)) return test_finish("dataset_doctor");
  clean();
  broken();
  others();
  trm_rf(root);
  return test_finish("dataset_doctor");
}
