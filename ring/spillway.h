/* SPDX-License-Identifier: MIT */
/*
 * spillway.h - the one public header of libspillway.
 *
 * Spillway is a shared-memory log bus for one Linux machine: producers append
 * variable-length records lock-free into a per-topic ring in shared memory,
 * consumers read them in place, and the daemon (spillwayd) spills the ring to
 * segment files so it can be reused.
 *
 * Conventions (liburing's): every call returns 0 or a non-negative count /
 * position on success and a negative errno on failure. errno is never the
 * API's channel. Positions are byte offsets in the topic's log, from the
 * topic's start position, never reused; they fit in int64_t.
 *
 * Errors you will meet:
 *   -EINVAL    bad argument (topic name, sizes, alignment, ...)
 *   -EEXIST    topic already exists (create)
 *   -ENOENT    topic not found (open / delete)
 *   -EAGAIN    ring full of unreclaimed bytes (non-blocking producer calls),
 *              or nothing to read yet (never returned by poll: it returns 0)
 *   -ETIMEDOUT a blocking call's timeout passed
 *   -EMSGSIZE  record larger than the topic's max_record
 *   -EBADMSG   garbage where a record header should be, or in the ring's
 *              header (a tail or start that is no record boundary: producer
 *              open and claims, consumer open); shared memory is never
 *              trusted: every length and bound is checked
 *   -ESTALE    the consumer was lapped: the bytes at its position were
 *              reclaimed; spw_consumer_oldest() says where the ring's data
 *              starts now (the gap is on disk, see the daemon)
 *   -EUSERS    every producer slot of the topic is held by a live producer
 *              (spw_topic_config.max_producers)
 *   -ECHILD    a producer handle used in a fork()ed child: handles belong to
 *              the process that opened them; open a new one in the child
 *   -EPROTO    a ring file of another format version (recreate the topic)
 *   -EIDRM     the topic was deleted under the handle: producer calls once
 *              spw_topic_delete removed it (at once: it marks the ring);
 *              waits also when the ring file went another way (rm: found
 *              within a second, spw_topic_deleted)
 *
 * The daemon never takes a claim away from a live producer: a producer that
 * stalls (SIGSTOP, a debugger, swapping) holds the topic back like a full
 * disk does, and the others wait (their own timeouts apply). Only a claim
 * whose producer is proven dead by the kernel (its lock on the ring file was
 * released) is aborted.
 */
#ifndef SPILLWAY_H
#define SPILLWAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPW_VERSION_MAJOR 0
#define SPW_VERSION_MINOR 1
#define SPW_VERSION_PATCH 0

#define SPW_NAME_MAX 128               /* topic names: [A-Za-z0-9._-]{1,128}, no leading '.' */
#define SPW_RING_MIN_BYTES (64u << 10) /* ring_bytes: a power of two >= 64 KiB */
#define SPW_RECORD_MAX_BYTES ((1u << 30) - 1) /* hard cap on max_record */
#define SPW_DEFAULT_SHM_DIR "/dev/shm/spillway"
#define SPW_RECORD_ALIGN 8u            /* every record starts 8-byte aligned */
#define SPW_RECORD_HEADER_BYTES 16u    /* header in front of each payload */

/* ---------------------------------------------------------------------------
 * Topics
 */

/* Topic flags (spw_topic_config.flags). */
#define SPW_TOPIC_NO_SPILL 0x1u /* pure IPC: the daemon reclaims without writing */

struct spw_topic_config {
	uint64_t ring_bytes;     /* power of two >= 64 KiB; 0 = 64 MiB */
	uint64_t segment_bytes;  /* multiple of ring_bytes; 0 = max(1 GiB, ring) */
	uint32_t max_record;     /* <= ring_bytes / 4; 0 = min(1 MiB, ring / 4) */
	uint32_t mode;           /* file mode of the ring; 0 = 0600 */
	uint32_t flags;          /* SPW_TOPIC_* */
	uint32_t max_producers;  /* producer handles open at once; 0 = 64, <= 4096 */
	uint64_t start_position; /* first position (8-aligned); 0 for a new log,
	                          * the end of the disk log for a recreated ring */
};

/* Open flags (spw_topic_open). */
#define SPW_OPEN_RDONLY 0x1u /* map the data read-only: consumers only */

struct spw_topic;

/*
 * Directory resolution for every call taking shm_dir: the argument when not
 * NULL, else $SPILLWAY_SHM_DIR, else SPW_DEFAULT_SHM_DIR. create makes the
 * directory (0700... then the mode of the files decides) when missing.
 */
const char *spw_shm_dir(const char *shm_dir);

/* Returns 0 when name is a valid topic name, -EINVAL otherwise. */
int spw_topic_name_check(const char *name);

/* Create the ring file, pre-faulted (pages allocated now, not on the first
 * producer). -EEXIST when it exists. cfg may be NULL for all defaults. */
int spw_topic_create(const char *shm_dir, const char *name,
		     const struct spw_topic_config *cfg);
/* Remove the ring file. Processes that have it open keep their mapping:
 * consumers read on what is in it; producers' calls return -EIDRM from then
 * on (the ring is marked deleted after the unlink; a ring we may not write
 * is only unlinked, and producers' waits find that within a second). */
int spw_topic_delete(const char *shm_dir, const char *name);
/* Map a topic. The header is validated (magic, version, sizes, file size);
 * a garbage header gives -EBADMSG. */
int spw_topic_open(const char *shm_dir, const char *name, unsigned flags,
		   struct spw_topic **out);
void spw_topic_close(struct spw_topic *t);

/* A snapshot of the topic's settings and counters (each counter is read
 * atomically; together they are not one instant). */
struct spw_topic_info {
	uint64_t ring_bytes, segment_bytes;
	uint32_t max_record, flags;
	uint64_t created_ns;     /* CLOCK_REALTIME */
	uint64_t start_position; /* first position this ring ever held */
	uint64_t tail;           /* next free position (producers) */
	uint64_t reclaimed;      /* oldest position still readable in the ring */
	uint64_t spilled;        /* bytes written to segment files (daemon) */
	uint64_t durable;        /* bytes fdatasync'd (daemon) */
	uint64_t limit;          /* producers may not claim past it */
	uint32_t daemon_pid;     /* heartbeat: 0 when no daemon ever attached */
	int32_t spill_error;     /* 0, or -errno: the daemon cannot write segments (disk full?) */
	uint64_t daemon_heartbeat_ns; /* CLOCK_REALTIME of the last heartbeat */
	uint32_t max_producers;
	int32_t stall_slot;      /* the daemon waits on a live producer's claim: */
	uint64_t stall_position; /*   its slot (-1: none), position, */
	uint32_t stall_pid;      /*   pid (0: unknown) and since when */
	uint32_t producers_waiting; /* producers asleep now on a full ring (send_wait, claim_wait) */
	uint64_t stall_since_ns; /*   (CLOCK_REALTIME) */
	uint64_t corrupt_bytes;  /* ring bytes the daemon skipped as garbage */
	uint64_t aborted_claims; /* claims of dead producers the daemon aborted */
	int32_t durable_error;   /* 0, or -errno of a failed fdatasync: durable is frozen */
	uint32_t retention_forced; /* segments deleted before a group read them (capped) */
	uint64_t disk_bad_ranges; /* damaged index entries recovery kept (spillway verify) */
};
int spw_topic_info(const struct spw_topic *t, struct spw_topic_info *out);

/* The producer slots in use: one entry per slot held by a live producer or
 * still holding a dead one's unfinished claim. Returns how many were
 * written (at most max). */
struct spw_producer_info {
	uint32_t slot;
	uint32_t pid;      /* as the producer reported it (advisory) */
	int alive;         /* 1: the kernel says its owner lives */
	int claiming;      /* 1: inside a claim (claim/end below are its span; claim ==
			    * the tail: the topic's only producer stopped before moving
			    * the tail, and producers that opened since wait for it) */
	int64_t claim, end;
	uint64_t since_ns; /* CLOCK_REALTIME when the slot was taken */
};
int spw_topic_producers(const struct spw_topic *t, struct spw_producer_info *out, int max);
const char *spw_topic_name(const struct spw_topic *t);
/* Was the topic deleted under this handle? spw_topic_delete marked its
 * ring, or it was unlinked, or replaced by another file (another inode or
 * device, a symlink too), since it was opened: nothing sent through it will
 * be spilled or reclaimed any more. 1 deleted, 0 not, or -errno; the mark
 * is a load, the rest two stat() calls. Producer calls return -EIDRM at
 * once after the mark; their waits (spw_producer_send_wait and the other
 * _wait forms) ask this once a second for a ring removed another way; a
 * spilled or durable spw_producer_wait_ack returns -EIDRM once, besides,
 * no spillwayd holds the ring (one still attached may sync the record as
 * it lets the ring go). */
int spw_topic_deleted(const struct spw_topic *t);

/* ---------------------------------------------------------------------------
 * Producers. A producer handle is used by one thread at a time; any number of
 * handles, in any number of processes, append to one topic concurrently.
 */
struct spw_producer;

/* Takes a producer slot of the topic and holds it until close (or the
 * process's death). -EUSERS when all max_producers slots are taken, -EBUSY
 * while an exclusive producer holds the topic; membarrier()'s error (-EPERM
 * under a seccomp filter that refuses it, -ENOSYS) when the topic's only
 * producer runs solo and this process cannot end that safely. */
int spw_producer_open(struct spw_topic *t, struct spw_producer **out);

/* Producer open flags. SPW_PRODUCER_EXCLUSIVE: this handle is the topic's only
 * producer while it lives (the kernel's lock on the ring file enforces it:
 * -EBUSY when any other producer is open, and other producers get -EBUSY
 * meanwhile). In return a send advances the tail with a plain store instead
 * of a locked compare-and-swap: the one-producer case at close to the speed
 * of a bare single-producer ring (as Aeron's ExclusivePublication). */
#define SPW_PRODUCER_EXCLUSIVE 0x1u
int spw_producer_open_flags(struct spw_topic *t, unsigned flags, struct spw_producer **out);
/* Aborts a claim still open, frees the slot. */
void spw_producer_close(struct spw_producer *p);

/* Copy a record in. Returns its position, or -EAGAIN (ring full),
 * -EMSGSIZE, -EINVAL, -EBADMSG (garbage in the ring's header), -EIDRM (the
 * topic was deleted: spw_topic_delete). */
int64_t spw_producer_send(struct spw_producer *p, const void *data, uint32_t len);
/* spw_producer_send with the caller's timestamp, stored as the record's
 * timestamp_ns as given: the library reads no clock (on the VM of
 * 2026-12-04 a 64 B send took 6.0 ns instead of 10.9; README, "Numbers"),
 * as Kafka's producer takes a record's time when given one. Use ns since
 * the Unix epoch, as the library's own (retention by age, SPW_START_TIME
 * and pacing read it: each segment keeps the largest timestamp so far, so
 * values out of order only delay what depends on time); e.g. one clock
 * reading per turn of the caller's loop. 0 means "no time": a segment of
 * only such records has no age for retention, and they are never the first
 * at or past a start time. Same returns as spw_producer_send. */
int64_t spw_producer_send_at(struct spw_producer *p, const void *data, uint32_t len,
			     uint64_t timestamp_ns);
/* Blocking variant: spins briefly, then sleeps on a futex until the daemon
 * reclaims room. timeout_ns < 0 waits forever. -ETIMEDOUT after timeout_ns. */
int64_t spw_producer_send_wait(struct spw_producer *p, const void *data,
			       uint32_t len, int64_t timeout_ns);
/* spw_producer_send_wait with the caller's timestamp (as
 * spw_producer_send_at: no clock read for it; the monotonic clock only
 * once it has to wait, for its timeout). */
int64_t spw_producer_send_wait_at(struct spw_producer *p, const void *data, uint32_t len,
				  int64_t timeout_ns, uint64_t timestamp_ns);

/* One record of a batch for spw_producer_send_batch. */
struct spw_msg {
	const void *data;
	uint32_t len;
};

/* Send records m[0..n) with one claim: one move of the tail and one clock
 * read (every record of the batch carries that timestamp). Sends the
 * longest prefix of m that fits in the free ring before the ring's end
 * (records never straddle it; the next call goes on after a padding
 * record): returns how many (1..n), 0 when n is 0, -EAGAIN when not even
 * m[0] fits, -EMSGSIZE when a record is longer than the topic's max_record
 * and -EINVAL when one has no data (then nothing is sent; only the records
 * one call can send are checked: at most ring_bytes / 16, and INT_MAX),
 * -EBUSY while the handle holds a claim, -ECHILD in a forked child.
 * positions, when not NULL, gets the position of each record sent. The
 * records are committed in order, each as soon as it is copied (a consumer
 * asleep on one is woken then): a producer killed half way loses only the
 * uncommitted rest (the daemon aborts it, ring_layout.h I7). */
int spw_producer_send_batch(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
			    int64_t *positions);
/* Blocking variant, as spw_producer_send_wait: waits until at least m[0]
 * fits; -ETIMEDOUT after timeout_ns (< 0: forever). */
int spw_producer_send_batch_wait(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
				 int64_t timeout_ns, int64_t *positions);
/* The two above with the caller's timestamps: m[i] gets timestamps_ns[i]
 * (as spw_producer_send_at: ns since the Unix epoch, 0 for none) and the
 * library reads no clock for them (the waiting form reads the monotonic
 * clock only once it has to wait, for its timeout); timestamps_ns NULL: as
 * without _at. The array covers m[0..n); a call that sends a prefix used
 * only its part. */
int spw_producer_send_batch_at(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
			       const uint64_t *timestamps_ns, int64_t *positions);
int spw_producer_send_batch_wait_at(struct spw_producer *p, const struct spw_msg *m, uint32_t n,
				    int64_t timeout_ns, const uint64_t *timestamps_ns,
				    int64_t *positions);

/* Zero copy: claim len bytes, write them at c->data, then commit or abort.
 * Exactly one claim per producer handle may be open at a time. */
struct spw_claim {
	void *data;        /* where to write the payload */
	uint32_t len;      /* payload length claimed */
	uint32_t reserved;
	int64_t position;  /* the record's position */
	void *hdr_;        /* private */
};
/* -EBUSY: this handle already has a claim open. */
int spw_producer_claim(struct spw_producer *p, uint32_t len, struct spw_claim *c);
int spw_producer_claim_wait(struct spw_producer *p, uint32_t len,
			    int64_t timeout_ns, struct spw_claim *c);
/* Publish the record. Never fails for a valid claim. */
int spw_producer_commit(struct spw_producer *p, struct spw_claim *c);
/* Publish it with the caller's timestamp (as spw_producer_send_at), stored
 * over the one the claim took from the clock. */
int spw_producer_commit_at(struct spw_producer *p, struct spw_claim *c, uint64_t timestamp_ns);
/* Turn the claim into an ABORTED record that consumers skip. */
int spw_producer_abort(struct spw_producer *p, struct spw_claim *c);

/* Acknowledgements: wait until the record at `position` is committed
 * (visible to consumers), spilled (in segment files: survives any process
 * crash) or durable (fdatasync'd: survives power loss). Returns 0, or
 * -ETIMEDOUT; timeout_ns < 0 waits forever, 0 only looks. SPW_ACK_DURABLE
 * returns -EIO (the error) once an fdatasync of the topic failed: those
 * bytes may never reach the disk, and the daemon never claims they did. Spilled and durable need the
 * daemon; a topic created with SPW_TOPIC_NO_SPILL never gets there
 * (-EOPNOTSUPP). A position at or past the tail, or not 8-aligned, is
 * -EINVAL at every level (it is no record that was sent). */
enum spw_ack { SPW_ACK_COMMITTED = 0, SPW_ACK_SPILLED = 1, SPW_ACK_DURABLE = 2 };
int spw_producer_wait_ack(struct spw_producer *p, int64_t position, enum spw_ack level,
			  int64_t timeout_ns);

/* ---------------------------------------------------------------------------
 * Consumers. Records are handed to a callback in place (zero copy): the
 * pointer is valid during the callback only. A consumer never delays
 * producers; one that falls more than the ring behind gets -ESTALE.
 */
struct spw_consumer;

enum spw_from {
	SPW_FROM_OLDEST = 0,   /* the oldest position still in the ring */
	SPW_FROM_LATEST = 1,   /* only records claimed after the open */
	SPW_FROM_POSITION = 2, /* a given position (must be a record boundary) */
};

struct spw_record {
	int64_t position;
	uint64_t timestamp_ns; /* CLOCK_REALTIME, taken at claim */
	const void *data;
	uint32_t len;
	uint32_t flags;
};

/* Return 0 to go on, non-zero to stop after this record (it counts as
 * consumed). */
typedef int (*spw_record_fn)(void *arg, const struct spw_record *r);

int spw_consumer_open(struct spw_topic *t, enum spw_from from, int64_t position,
		      struct spw_consumer **out);
void spw_consumer_close(struct spw_consumer *c);

/* Deliver up to max committed records from the consumer's position.
 * Returns the count delivered (0: nothing yet), -ESTALE (lapped: the
 * position is left at the first record not delivered), -EBADMSG (garbage
 * header at the position; spw_consumer_position() names it). ABORTED and
 * PADDING records are skipped and not counted. */
int spw_consumer_poll(struct spw_consumer *c, spw_record_fn fn, void *arg, int max);
/* As poll, but when nothing is there, spin briefly then sleep on a futex
 * until a producer commits. timeout_ns < 0 waits forever; returns 0 after the
 * timeout. */
int spw_consumer_poll_wait(struct spw_consumer *c, spw_record_fn fn, void *arg,
			   int max, int64_t timeout_ns);
/* Batch reading, zero copy, for small records: peek describes up to max
 * committed DATA records at the consumer's position in recs[] (data points
 * into the ring) without moving the position; the caller reads them, then
 * release(c, recs, n) moves past the first n of them. One lap check per
 * batch instead of two per record (ring/ring_layout.h I5), no callback: release
 * returns n, or -ESTALE when the ring lapped the consumer while it held them
 * (what it read may be torn: the position stays, as poll's would). peek
 * returns the count (0: nothing yet), -ESTALE or -EBADMSG as poll; ABORTED
 * and PADDING records between DATA ones are passed over. A peek right after
 * one that found nothing describes one record: it does not look at the
 * next one's commit word, a cache miss while the producer writes it, which
 * would hold up what the caller does with this record (a reply) by as long;
 * the next peek describes the rest. */
int spw_consumer_peek(struct spw_consumer *c, struct spw_record *recs, int max);
int spw_consumer_release(struct spw_consumer *c, const struct spw_record *recs, int n);
/* The next position this consumer will read. */
int64_t spw_consumer_position(const struct spw_consumer *c);
/* The oldest position still readable in the ring (the reclaim bound). */
int64_t spw_consumer_oldest(const struct spw_consumer *c);
/* Move to a position (a record boundary the caller knows, e.g. the oldest
 * after -ESTALE). -ESTALE if already reclaimed, -EINVAL if beyond the tail,
 * unaligned, or not a record boundary (a position inside a record is
 * refused, even where the payload holds bytes that read as a record header:
 * the chain of records is walked to the position, one commit word per
 * record, from the consumer's own position when that is not past it, else
 * from the oldest). The walk stops after 2^20 records, or at a gap no
 * producer holds by a won claim (a dead producer's, not settled yet): past
 * that, a valid-looking header is taken on trust. */
int spw_consumer_seek(struct spw_consumer *c, int64_t position);
/* Bytes of CORRUPT spans (garbage the daemon cut out of the ring) this
 * consumer passed over. */
uint64_t spw_consumer_skipped(const struct spw_consumer *c);
/* For a consumer that spins on poll or peek and wants throughput more than
 * latency: once a poll or peek finds nothing, the calls in the next ns
 * nanoseconds return 0 at once, without reading the ring. A consumer that
 * has caught up with a fast producer otherwise pulls to its core the cache
 * line the producer is writing, once per record, and slows both sides down
 * (64 B records: see README, "Numbers"). A record may then wait up to ns
 * before it is seen, and a lap (-ESTALE) is reported up to ns late: keep it
 * 0 (the default, off) for latency. After a back-off during which the
 * producer wrote more than a quarter of the ring, the next ones are scaled
 * down (not below 1 us) to let in about a quarter; they grow back to ns
 * when the producer slows, so the first after a quiet spell is ns again:
 * pick ns well under the time the producer takes to fill a quarter ring.
 * poll_wait ignores it and ends it when it delivers; seek ends it. 0, or -EINVAL (ns < 0 or > SPW_CONSUMER_BACKOFF_MAX_NS).
 * Setting it ends a back-off in progress. */
#define SPW_CONSUMER_BACKOFF_MAX_NS 1000000000ll
int spw_consumer_set_backoff(struct spw_consumer *c, int64_t ns);

/* ---------------------------------------------------------------------------
 * Readers: everything retention keeps, disk then live. A reader starts in
 * the segment files (<data_dir>/<topic>/) when its position is no longer in
 * the ring, switches to the live ring once it has caught up, and back to disk
 * whenever it is lapped: no gap, no duplicate, the live consumer's callback.
 * data_dir NULL: $SPILLWAY_DATA_DIR, else /var/lib/spillway (root) or
 * $XDG_STATE_HOME/spillway.
 */
struct spw_reader;

enum spw_start {
	SPW_START_EARLIEST = 0, /* the oldest record retention kept */
	SPW_START_LATEST = 1,   /* records produced after the open */
	SPW_START_POSITION = 2, /* a record boundary */
	SPW_START_TIME = 3,     /* first record with timestamp >= time_ns */
	SPW_START_GROUP = 4,    /* a group's committed position (earliest if none) */
};

#define SPW_READER_SKIP_CORRUPT 0x1u /* skip a range that fails its CRC, go on */
#define SPW_READER_NO_LIVE 0x2u      /* never read the ring: disk only */
#define SPW_READER_NO_VERIFY 0x4u    /* do not check segment CRCs */
/* Read segments on the calling thread only. By default a reader reading
 * chunk after chunk from disk starts one helper thread (when the calling
 * thread may run on two CPUs and no cgroup CPU quota is below two) that
 * reads and checks every other chunk:
 * faster from the page cache (README, "Replay"), at the cost of a second
 * core while it catches up. */
#define SPW_READER_NO_READAHEAD 0x8u

struct spw_reader_opts {
	const char *shm_dir;   /* NULL: as spw_shm_dir() */
	const char *data_dir;  /* NULL: as spw_data_dir() */
	enum spw_start start;
	int64_t position;      /* SPW_START_POSITION */
	uint64_t time_ns;      /* SPW_START_TIME */
	const char *group;     /* SPW_START_GROUP */
	/* Bounds for batch jobs; 0 = none. The reader stops before the first
	 * record at or past stop_position, with a timestamp >= stop_time_ns,
	 * or after max_records; then spw_reader_done() is true. */
	int64_t stop_position;
	uint64_t stop_time_ns;
	uint64_t max_records;
	unsigned flags;        /* SPW_READER_* */
};

const char *spw_data_dir(const char *data_dir);

/* -ENOENT: no such topic (neither ring nor data dir). -ERANGE: the start
 * position was deleted by retention (spw_topic_earliest() says what is kept).
 * -EINVAL: a position that is unaligned or beyond the tail. */
int spw_reader_open(const char *topic, const struct spw_reader_opts *opts,
		    struct spw_reader **out);
void spw_reader_close(struct spw_reader *r);
/* As spw_consumer_poll: the count delivered, 0 when nothing is there (or the
 * bound was reached: see spw_reader_done), or -errno:
 *   -ERANGE   the position was deleted by retention meanwhile
 *   -EBADMSG  a segment failed its CRC or holds a bad header, or a segment
 *             that later ones (or the durable checkpoint) follow has no
 *             whole index (see spw_reader_error); with
 *             SPW_READER_SKIP_CORRUPT a CRC-failed range is skipped
 *             instead, and counted in spw_reader_skipped()
 *   -ENOENT   a segment is missing in the middle of the log, or at its end
 *             below the durable checkpoint (spw_reader_error)
 *   -ESTALE   lapped while live with SPW_READER_NO_LIVE unset but the data
 *             dir lacks the range (no daemon spilling?) */
int spw_reader_poll(struct spw_reader *r, spw_record_fn fn, void *arg, int max);
int spw_reader_poll_wait(struct spw_reader *r, spw_record_fn fn, void *arg, int max,
			 int64_t timeout_ns);
/* Batch reading, for speed (no callback per record): up to max records
 * into recs[]; recs[i].data stays valid until the next call on r (any
 * call) or spw_reader_close. A batch is all from the disk (one verified
 * buffer) or all live (copies, validated as poll's are). timeout_ns: 0
 * returns at once, < 0 waits for at least one record, > 0 waits that long.
 * Returns as spw_reader_poll. Live, right after a look that found nothing,
 * the batch is the one record found (as spw_consumer_peek's). */
int spw_reader_read(struct spw_reader *r, struct spw_record *recs, int max, int64_t timeout_ns);
int64_t spw_reader_position(const struct spw_reader *r);
int spw_reader_done(const struct spw_reader *r);
int spw_reader_is_live(const struct spw_reader *r);
uint64_t spw_reader_skipped(const struct spw_reader *r); /* bytes skipped as corrupt */
/* Was the topic deleted under this reader? Its ring unlinked or replaced by
 * another file (another inode or device, a symlink too) since the reader
 * mapped it, or, for a topic that had no ring when the reader opened, its data
 * dir removed. Nothing will come any more: a follower should stop (the CLI's
 * `consume --follow` exits 1; Python's following iteration raises
 * NotFound). 1 deleted, 0 not, or -errno. Two stat() calls: for a follower
 * that found nothing, a few times a second, not for every poll. */
int spw_reader_deleted(const struct spw_reader *r);
/* The file and position of the last -EBADMSG / -ENOENT / -ERANGE. */
int spw_reader_error(const struct spw_reader *r, char *file, size_t file_len, int64_t *position);
/* The oldest position kept (disk, else ring) for a topic. */
int64_t spw_topic_earliest(const char *shm_dir, const char *data_dir, const char *topic);

/* Consumer groups: <data_dir>/<topic>/groups/<group>, replaced atomically
 * (write, fsync, rename, fsync dir) with a CRC, so a torn write never yields
 * a bad position. Group names follow the topic-name rules.
 * A group has one reader at a time (as a Kafka partition has one member of
 * a group): the reader that opens at SPW_START_GROUP, commits to a group or
 * joins it holds it until it is closed or its process ends (a lock the
 * kernel drops; a stopped reader keeps it). Another reader then gets
 * -EBUSY from spw_reader_open (SPW_START_GROUP), spw_reader_join and
 * spw_reader_commit. A reader that cannot take the lock (-EROFS, -EACCES,
 * -EPERM, -ENOENT: no topic data dir yet) still opens at the group's
 * position, without holding it, unless another reader holds it (-EBUSY)
 * or that cannot be told (its error). A join or commit of a group whose lock
 * file was removed or replaced meanwhile gives -ENOLCK, and the reader lets
 * the group go for good. A reader that
 * joins at its first commit writes its own position, even below the
 * group's: open at the group (or join) to go on from the group's. A forked
 * child never holds its parent's groups (there join and commit give
 * -ECHILD). */
int spw_reader_join(struct spw_reader *r, const char *group);
int spw_reader_commit(struct spw_reader *r, const char *group);
int spw_group_read(const char *data_dir, const char *topic, const char *group,
		   int64_t *position);
/* Calls fn for each group of the topic with its position, or the -errno
 * of a position file that cannot be read (-EBADMSG: damaged, not 32 bytes,
 * or more than one link). fn returns nonzero to stop the walk; it must
 * return, not longjmp or throw out of it (the walk's directory would stay
 * open). The number of groups walked, 0 without a groups/ dir, or -errno:
 * -ELOOP (groups/ is a symlink), -ENOTDIR (a file). */
typedef int (*spw_group_fn)(void *arg, const char *group, int64_t position);
int spw_group_list(const char *data_dir, const char *topic, spw_group_fn fn, void *arg);
/* The path of the file whose lock the group's one reader holds (for
 * messages and checks: `spillway stat` names its holder), into buf of size
 * bytes: 0, -EINVAL (a bad name), -ENAMETOOLONG. */
int spw_group_lock_path(char *buf, size_t size, const char *data_dir, const char *topic,
			const char *group);

#ifdef __cplusplus
}
#endif
#endif /* SPILLWAY_H */
