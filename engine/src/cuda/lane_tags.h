/* lane_tags.h - which stream lane may reuse a freed device block, while a device's work is forked over several
 * streams ("lanes", see rn_cuda_fork in cuda_api.h). Pure bookkeeping without CUDA calls (cuda_alloc.c keeps
 * one per device), so tests/c/test_lane_tags.c checks the rules on any machine.
 *
 * With one stream, a freed block can serve the next allocation at once: whatever used it is queued before
 * whatever comes next. With lanes that holds only within a lane. The rules:
 *   - a block freed while not forked is RN_LANE_ANY: every lane of a later fork waits for the fork point;
 *   - a block handed out during the fork on lane L and freed during it is tagged L: only lane L takes it again
 *     (a lane's work never reads another lane's tensors: that is the contract of a fork);
 *   - any other block freed during the fork (made before it, read by lanes that may still be running) is
 *     RN_LANE_DEFERRED: nobody takes it until the join, after which the first stream waits for every lane;
 *   - the join makes every tag RN_LANE_ANY again (rn_lane_tags_join; the caller retags its lists).
 */
#ifndef REALNET_LANE_TAGS_H
#define REALNET_LANE_TAGS_H

#include <stdbool.h>

#include "realnet/status.h"

#define RN_LANE_ANY (-1)
#define RN_LANE_DEFERRED (-2)

typedef struct {
  void *ptr;
  int lane;
} rn_lane_note;

typedef struct {
  int lanes;   /* lanes of the fork in progress; 0 when not forked */
  int current; /* the lane new work goes to (0 when not forked) */
  rn_lane_note *notes; /* blocks handed out during the fork and not yet freed, with their lane */
  int n, cap;
} rn_lane_tags;

/* Starts a fork of `lanes` lanes (2 or more) on lane 0; an error when one is in progress. */
rn_status rn_lane_tags_fork(rn_lane_tags *t, int lanes);
/* New work goes to `lane` (0 .. lanes-1); an error when not forked or out of range. */
rn_status rn_lane_tags_use(rn_lane_tags *t, int lane);
/* Ends the fork: notes cleared, back to lane 0. The caller then retags its blocks RN_LANE_ANY. */
void rn_lane_tags_join(rn_lane_tags *t);
/* Frees the notes' memory (the struct may then be reused as if zeroed). */
void rn_lane_tags_clear(rn_lane_tags *t);

/* Whether a free block tagged `tag` may be handed to an allocation now. */
bool rn_lane_tags_may_take(const rn_lane_tags *t, int tag);
/* Records that ptr was handed out now (a no-op when not forked); false when out of host memory. */
bool rn_lane_tags_note_alloc(rn_lane_tags *t, void *ptr);
/* The tag a block freed now gets (and forgets its note). */
int rn_lane_tags_tag_for_free(rn_lane_tags *t, void *ptr);

#endif
