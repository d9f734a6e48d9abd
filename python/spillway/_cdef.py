# SPDX-License-Identifier: MIT
"""_cdef.py - the C declarations of libspillway (ring/spillway.h) that the
Python package uses, in cffi's cdef syntax: one copy for both ways the package
reaches the library, ABI mode (dlopen) and the compiled API-mode module
(python/build_api.py, which has the C compiler check every struct and enum
here against the real header).
"""

CDEF = """
struct spw_topic_config {
    uint64_t ring_bytes; uint64_t segment_bytes; uint32_t max_record; uint32_t mode;
    uint32_t flags; uint32_t max_producers; uint64_t start_position;
};
struct spw_topic_info {
    uint64_t ring_bytes, segment_bytes; uint32_t max_record, flags; uint64_t created_ns;
    uint64_t start_position; uint64_t tail; uint64_t reclaimed; uint64_t spilled;
    uint64_t durable; uint64_t limit; uint32_t daemon_pid; int32_t spill_error;
    uint64_t daemon_heartbeat_ns; uint32_t max_producers; int32_t stall_slot;
    uint64_t stall_position; uint32_t stall_pid; uint32_t producers_waiting; uint64_t stall_since_ns;
    uint64_t corrupt_bytes; uint64_t aborted_claims; int32_t durable_error; uint32_t retention_forced;
    uint64_t disk_bad_ranges;
};
struct spw_record {
    int64_t position; uint64_t timestamp_ns; const void *data; uint32_t len; uint32_t flags;
};
enum spw_start { SPW_START_EARLIEST = 0, SPW_START_LATEST = 1, SPW_START_POSITION = 2,
                 SPW_START_TIME = 3, SPW_START_GROUP = 4 };
struct spw_reader_opts {
    const char *shm_dir; const char *data_dir; enum spw_start start; int64_t position;
    uint64_t time_ns; const char *group; int64_t stop_position; uint64_t stop_time_ns;
    uint64_t max_records; unsigned flags;
};
enum spw_ack { SPW_ACK_COMMITTED = 0, SPW_ACK_SPILLED = 1, SPW_ACK_DURABLE = 2 };
struct spw_topic; struct spw_producer; struct spw_reader;
const char *spw_shm_dir(const char *shm_dir);
const char *spw_data_dir(const char *data_dir);
int spw_topic_create(const char *shm_dir, const char *name, const struct spw_topic_config *cfg);
int spw_topic_delete(const char *shm_dir, const char *name);
int spw_topic_open(const char *shm_dir, const char *name, unsigned flags, struct spw_topic **out);
void spw_topic_close(struct spw_topic *t);
int spw_topic_info(const struct spw_topic *t, struct spw_topic_info *out);
int spw_producer_open(struct spw_topic *t, struct spw_producer **out);
void spw_producer_close(struct spw_producer *p);
int64_t spw_producer_send(struct spw_producer *p, const void *data, uint32_t len);
int64_t spw_producer_send_wait(struct spw_producer *p, const void *data, uint32_t len,
                               int64_t timeout_ns);
int64_t spw_producer_send_wait_at(struct spw_producer *p, const void *data, uint32_t len,
                                  int64_t timeout_ns, uint64_t timestamp_ns);
struct spw_msg { const void *data; uint32_t len; };
int spw_producer_send_batch_wait_at(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
                                    int64_t timeout_ns, const uint64_t *timestamps_ns,
                                    int64_t *positions);
int spw_producer_wait_ack(struct spw_producer *p, int64_t position, enum spw_ack level,
                          int64_t timeout_ns);
int spw_reader_open(const char *topic, const struct spw_reader_opts *opts,
                    struct spw_reader **out);
void spw_reader_close(struct spw_reader *r);
int spw_reader_read(struct spw_reader *r, struct spw_record *recs, int max, int64_t timeout_ns);
int64_t spw_reader_position(const struct spw_reader *r);
int spw_reader_done(const struct spw_reader *r);
int spw_reader_is_live(const struct spw_reader *r);
uint64_t spw_reader_skipped(const struct spw_reader *r);
int spw_reader_deleted(const struct spw_reader *r);
int spw_topic_name_check(const char *name);
int spw_topic_deleted(const struct spw_topic *t);
int spw_reader_error(const struct spw_reader *r, char *file, size_t file_len, int64_t *position);
int spw_reader_join(struct spw_reader *r, const char *group);
int spw_reader_commit(struct spw_reader *r, const char *group);
int spw_group_read(const char *data_dir, const char *topic, const char *group, int64_t *position);
int spw_group_lock_path(char *buf, size_t size, const char *data_dir, const char *topic,
                        const char *group);
"""
