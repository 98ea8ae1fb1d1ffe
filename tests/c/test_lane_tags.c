/* test_lane_tags.c - the reuse rules of freed device blocks across stream lanes (engine/src/cuda/lane_tags.c),
 * on any machine: the rules one by one, then a random schedule of forks, joins, allocations, reads and frees
 * against a model of stream ordering. A reused block must never reach work that could run concurrently with
 * an earlier user of it: a use is ordered before a later one when it lies in an earlier segment (a fork waits
 * for the work before it, a join waits for every lane) or on the same lane of the same fork. */
#include <stdlib.h>
#include <string.h>

#include "cuda/lane_tags.h"
#include "testutil.h"

static void rules(void) {
  rn_lane_tags t = {0};
  int a, b, c;
  CHECK(rn_lane_tags_may_take(&t, RN_LANE_ANY));
  CHECK(!rn_lane_tags_may_take(&t, RN_LANE_DEFERRED));
  CHECK(rn_lane_tags_tag_for_free(&t, &a) == RN_LANE_ANY); /* not forked: reusable at once */
  CHECK_ERR(rn_lane_tags_use(&t, 1), RN_ERR_ARG, "no fork");
  CHECK_ERR(rn_lane_tags_fork(&t, 1), RN_ERR_ARG, "2 or more");
  CHECK_OK(rn_lane_tags_fork(&t, 3));
  CHECK_ERR(rn_lane_tags_fork(&t, 2), RN_ERR_ARG, "in progress");
  CHECK_ERR(rn_lane_tags_use(&t, 3), RN_ERR_ARG, "lane 3 of a fork of 3");
  CHECK_OK(rn_lane_tags_use(&t, 1));
  CHECK(rn_lane_tags_note_alloc(&t, &a));
  CHECK_OK(rn_lane_tags_use(&t, 2));
  CHECK(rn_lane_tags_note_alloc(&t, &b));
  CHECK(rn_lane_tags_tag_for_free(&t, &a) == 1); /* freed while lane 2 is current: still lane 1's */
  CHECK(rn_lane_tags_tag_for_free(&t, &c) == RN_LANE_DEFERRED); /* made before the fork */
  CHECK(!rn_lane_tags_may_take(&t, 1));
  CHECK(rn_lane_tags_may_take(&t, 2) && rn_lane_tags_may_take(&t, RN_LANE_ANY));
  CHECK(!rn_lane_tags_may_take(&t, RN_LANE_DEFERRED));
  rn_lane_tags_join(&t);
  CHECK(rn_lane_tags_tag_for_free(&t, &b) == RN_LANE_ANY); /* after the join everything is ordered */
  CHECK(!rn_lane_tags_may_take(&t, 2));                      /* callers retag; a stale lane tag stays unusable */
  CHECK_OK(rn_lane_tags_fork(&t, 2));                        /* a second fork after the join */
  rn_lane_tags_clear(&t);
  CHECK(t.lanes == 0 && t.notes == NULL);
}

/* ------------------------------------------------------------------ a random schedule */

enum { NBLOCKS = 400, MAXUSES = 64, STEPS = 200000 };

typedef struct { int segment, lane; } use;
typedef struct {
  bool live, cached;
  int tag;           /* while cached */
  use uses[MAXUSES]; /* since it was last handed out */
  int n;
} sim_block;

static sim_block blocks[NBLOCKS];
static int segment, reused, deferred_seen, lane_reuse;

static bool ordered(use u, int lane) { return u.segment < segment || u.lane == lane; }

static void add_use(sim_block *b, int lane) {
  if (b->n < MAXUSES) b->uses[b->n++] = (use){segment, lane};
  else b->uses[MAXUSES - 1] = (use){segment, lane}; /* keep the newest; older ones of one lane are implied */
}

static void schedule(unsigned seed) {
  srand(seed);
  rn_lane_tags t = {0};
  memset(blocks, 0, sizeof blocks);
  segment = 0;
  int violations = 0;
  for (int step = 0; step < STEPS; step++) {
    int r = rand() % 100;
    int lane = t.current;
    if (r < 2) { /* fork or join */
      if (t.lanes) {
        rn_lane_tags_join(&t);
        for (int i = 0; i < NBLOCKS; i++)
          if (blocks[i].cached) blocks[i].tag = RN_LANE_ANY;
      } else if (rn_lane_tags_fork(&t, 2 + rand() % 4) != RN_OK) {
        violations++;
      }
      segment++;
    } else if (r < 10 && t.lanes) { /* switch lanes */
      if (rn_lane_tags_use(&t, rand() % t.lanes) != RN_OK) violations++;
    } else if (r < 50) { /* allocate: a cached block the rules allow, else a fresh one */
      int pick = -1;
      for (int i = 0; i < NBLOCKS && pick < 0; i++)
        if (blocks[i].cached && rn_lane_tags_may_take(&t, blocks[i].tag)) pick = i;
      if (pick >= 0) {
        reused++;
        if (blocks[pick].tag >= 0) lane_reuse++;
        for (int k = 0; k < blocks[pick].n; k++)
          if (!ordered(blocks[pick].uses[k], lane)) violations++;
      } else {
        for (int i = 0; i < NBLOCKS && pick < 0; i++)
          if (!blocks[i].live && !blocks[i].cached) pick = i;
        if (pick < 0) continue;
        blocks[pick].n = 0;
      }
      sim_block *b = &blocks[pick];
      b->live = true;
      b->cached = false;
      add_use(b, lane);
      if (!rn_lane_tags_note_alloc(&t, b)) violations++;
    } else if (r < 75) { /* read a live block: made on this lane in this fork, or before the fork */
      int i = rand() % NBLOCKS;
      sim_block *b = &blocks[i];
      if (!b->live) continue;
      use first = b->uses[b->n - 1];
      if (t.lanes && first.segment == segment && first.lane != lane) continue; /* another lane's tensor */
      add_use(b, lane);
    } else { /* free a live block (the Lua collector may free anything at any time) */
      int i = rand() % NBLOCKS;
      sim_block *b = &blocks[i];
      if (!b->live) continue;
      b->live = false;
      b->cached = true;
      b->tag = rn_lane_tags_tag_for_free(&t, b);
      if (b->tag == RN_LANE_DEFERRED) deferred_seen++;
    }
  }
  rn_lane_tags_clear(&t);
  CHECK(violations == 0);
}

int main(void) {
  rules();
  for (unsigned seed = 1; seed <= 5; seed++) schedule(seed);
  CHECK(reused > 1000 && lane_reuse > 100 && deferred_seen > 100); /* the schedule exercised every rule */
  printf("lane tags: %d reuses (%d within a lane), %d deferred frees\n", reused, lane_reuse, deferred_seen);
  return test_finish("lane_tags");
}
