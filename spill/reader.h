/* SPDX-License-Identifier: MIT */
/*
 * reader.h - private to the reader (spill/reader.c: the API, live reading,
 * delivery; spill/reader_disk.c: segments, indexes, CRCs). Invariants R1-R5
 * are stated in spill/reader.c.
 */
#ifndef SPILLWAY_SPILL_READER_H
#define SPILLWAY_SPILL_READER_H

#include "spill.h"

#define RD_CHUNK (1024u << 10) /* fits L2 with room: pread, CRC and walk stay hot */

struct rd_seg {
	uint64_t base;
	int fd;
	struct seg_idx_hdr hdr;
	struct seg_idx_entry *ent;
	int nent;
	char path[PATH_MAX];
};

struct spw_reader {
	char topic[SPW_NAME_MAX + 1];
	char shm_dir[PATH_MAX], data_dir[PATH_MAX], dir[PATH_MAX];
	struct spw_reader_opts o;
	uint64_t ring_bytes, segment_bytes, max_record;
	struct spw_topic *t;
	struct spw_consumer *c;
	bool live, done, time_skip;
	bool done_after; /* done after delivering the record (max_records) */
	uint64_t pos;
	struct rd_seg seg;
	uint8_t *buf;             /* page-aligned pread buffer (R4) */
	size_t buf_cap;
	uint8_t *stage;           /* live records' copies (R2): one, or a batch's */
	size_t stage_cap;
	uint64_t buf_from, buf_to; /* positions held and verified in buf */
	uint64_t delivered, skipped;
	char err_file[PATH_MAX];
	int64_t err_pos;
};

/* reader.c */
void rd_set_err(struct spw_reader *r, const char *file, uint64_t pos);
int64_t rd_earliest(const char *dir, struct spw_topic *t);
/* reader_disk.c */
void rd_seg_drop(struct rd_seg *g);
int rd_seg_load(struct spw_reader *r, uint64_t pos);
/* Load the index entries around r->pos into the buffer and verify them
 * (R3, R4). 1 when loaded, 0 at the end of what the disk has, or -errno. */
int rd_fill(struct spw_reader *r);
/* Is pos a record boundary (R1)? 0, -EINVAL (inside a record) or -errno. */
int rd_check_boundary(struct spw_reader *r, uint64_t pos);
/* Test seam (tests/spill_reader.c): called when a reader first goes live,
 * between its check that its position is still in the ring and opening a
 * consumer there, so a test can have the daemon reclaim it meanwhile. */
extern void (*rd_test_go_live_hook)(struct spw_reader *r) __attribute__((visibility("hidden")));

#endif
