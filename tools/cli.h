/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the spillway subcommands share (tools/cli.c, tools/output.c;
 * the disk log is walked by spill/walk.c): the common flags and directories, option parsing with the
 * exit-code contract, size / duration / position parsing, error lines, topic
 * lookups with their hints, and record output formats.
 *
 * Exit codes: CLI_OK 0, CLI_ERR 1 (something failed), CLI_USAGE 2 (the
 * command line is wrong: unknown flag, bad value, bad name). Every error is
 * one line on stderr: "spillway <cmd>: what failed, where, what to do".
 */
#ifndef SPILLWAY_CLI_H
#define SPILLWAY_CLI_H

#define _GNU_SOURCE
#include "../spill/metrics.h"
#include "bench_hist.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2,
       CLI_DONE = -1 /* internal: --help was printed, exit 0 now */ };

/* The running subcommand and the common flags. */
struct cli {
	const char *cmd;      /* "produce", "topic create": prefixes every message */
	const char *shm_flag; /* --shm-dir, or NULL */
	const char *data_flag;
	char shm_dir[PATH_MAX], data_dir[PATH_MAX]; /* resolved by cli_dirs() */
};
extern struct cli G;

/* Option values for the common flags (tools/opts.c adds them to every table). */
enum { OPT_SHM_DIR = 0x100, OPT_DATA_DIR, OPT_FIRST_LOCAL = 0x110 };
#define CLI_COMMON_OPTS                                              \
	{ "shm-dir", required_argument, NULL, OPT_SHM_DIR },         \
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },       \
	{ "help", no_argument, NULL, 'h' }

/* The common flags' help lines, for every subcommand's usage text. */
#define CLI_COMMON_HELP                                                                     \
	"Common options:\n"                                                                 \
	"  --shm-dir DIR     where the rings live (env SPILLWAY_SHM_DIR; /dev/shm/spillway)\n" \
	"  --data-dir DIR    where the segments live (env SPILLWAY_DATA_DIR; /var/lib/spillway\n" \
	"                    as root, else $XDG_STATE_HOME/spillway)\n"                     \
	"  -h, --help        this help\n"                                                    \
	"Exit status: 0 ok, 1 error, 2 usage error.\n"

/* A subcommand's flags as a table (tools/opts.c): each names its flag, the
 * kind of value it takes and where the value goes. The table ends with
 * O_END (no name, no short name). */
enum cli_opt_kind {
	CLI_O_FLAG,     /* no value: *(bool *)dst = true */
	CLI_O_BITS,     /* no value: *(unsigned *)dst |= arg */
	CLI_O_STR,      /* *(const char **)dst = the value */
	CLI_O_NAME,     /* the same, checked as a name (cli_name_check: "group") */
	CLI_O_COUNT,    /* uint64_t (cli_count) */
	CLI_O_SIZE,     /* uint64_t bytes (cli_size) */
	CLI_O_DURATION, /* uint64_t ms (cli_duration) */
	CLI_O_WHERE,    /* struct where (cli_where; arg: WHERE_* flags) */
	CLI_O_FORMAT,   /* enum fmt (cli_format; arg: the allowed mask) */
	CLI_O_SPEED,    /* double (cli_parse_speed) */
	CLI_O_SECONDS,  /* double seconds: a duration, bare = s, arg ms .. 86400 s */
	CLI_O_FN,       /* fn(dst, "--flag", value): CLI_OK or CLI_USAGE (said) */
};
struct cli_opt {
	const char *name; /* the long flag without "--", or NULL (short only) */
	int short_name;   /* a one-letter alias, or 0 */
	enum cli_opt_kind kind;
	void *dst;
	unsigned arg;
	bool *seen;       /* set when the flag is given, or NULL */
	int (*fn)(void *dst, const char *flag, const char *value);
};
/* Table entries, with dst's type checked (a mismatch fails to compile). */
#define CLI_T(type, p) ((void *)(1 ? (p) : (type *)0))
#define O_FLAG(n, s, p) { n, s, CLI_O_FLAG, CLI_T(bool, p), 0, NULL, NULL }
#define O_BITS(n, p, bits) { n, 0, CLI_O_BITS, CLI_T(unsigned, p), bits, NULL, NULL }
#define O_STR(n, s, p) { n, s, CLI_O_STR, CLI_T(const char *, p), 0, NULL, NULL }
#define O_NAME(n, p) { n, 0, CLI_O_NAME, CLI_T(const char *, p), 0, NULL, NULL }
#define O_COUNT(n, p, seen) { n, 0, CLI_O_COUNT, CLI_T(uint64_t, p), 0, seen, NULL }
#define O_SIZE(n, p, seen) { n, 0, CLI_O_SIZE, CLI_T(uint64_t, p), 0, seen, NULL }
#define O_DURATION(n, p) { n, 0, CLI_O_DURATION, CLI_T(uint64_t, p), 0, NULL, NULL }
#define O_WHERE(n, p, flags) { n, 0, CLI_O_WHERE, CLI_T(struct where, p), flags, NULL, NULL }
#define O_FORMAT(n, p, mask) { n, 0, CLI_O_FORMAT, CLI_T(enum fmt, p), mask, NULL, NULL }
#define O_SPEED(n, p) { n, 0, CLI_O_SPEED, CLI_T(double, p), 0, NULL, NULL }
#define O_SECONDS(n, p, min_ms) { n, 0, CLI_O_SECONDS, CLI_T(double, p), min_ms, NULL, NULL }
#define O_FN(n, s, p, f) { n, s, CLI_O_FN, p, 0, NULL, f }
#define O_END { NULL, 0, CLI_O_FLAG, NULL, 0, NULL, NULL }
/* The flags every command that reads a topic out shares (consume, replay):
 * where to start, the pace, the output format, corrupt ranges. */
#define O_READ_OUT(from, speed, max_gap, fmt, reader_flags)                      \
	O_WHERE("from", from, WHERE_ENDS), O_SPEED("speed", speed),               \
		O_DURATION("max-gap", max_gap), O_FORMAT("format", fmt, FMT_ALL_MASK), \
		O_BITS("skip-corrupt", reader_flags, SPW_READER_SKIP_CORRUPT)
/* Parse argv by spec (plus --shm-dir, --data-dir, --help): -1 to go on,
 * else the exit status (CLI_OK after --help; CLI_USAGE after saying what
 * is wrong). optind is then at the first operand. */
int cli_opts(int argc, char **argv, const struct cli_opt *spec, const char *usage);
/* The same, then exactly one operand, a valid topic NAME, into *name. */
int cli_opts_topic(int argc, char **argv, const struct cli_opt *spec, const char *usage,
		   const char **name);

/* "spillway <cmd>: " + message + "\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, then "(see: spillway <cmd> --help)"; returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Resolve the dirs (flag, else env, else default) into G. */
void cli_dirs(void);
/* " --shm-dir X --data-dir Y" when given as flags (for hints), else "". */
const char *cli_dir_flags(void);

/* Exactly one positional NAME, a valid topic name. CLI_OK or CLI_USAGE. */
int cli_topic_arg(int argc, char **argv, const char **name);
int cli_name_check(const char *what, const char *name);

/* Value parsers: CLI_OK, or CLI_USAGE with the error printed. */
int cli_size(const char *opt, const char *s, uint64_t *out);
int cli_duration(const char *opt, const char *s, uint64_t *ms);
int cli_count(const char *opt, const char *s, uint64_t *out);

/* --from / --to: earliest | latest | POSITION | @TIME. TIME is Unix seconds
 * with an optional fraction, ISO-8601 (2026-11-24T22:00:00Z, a fraction and
 * a +hh:mm offset allowed), or -DURATION (@-10m: ten minutes ago). */
enum where_kind { W_NONE = 0, W_EARLIEST, W_LATEST, W_POSITION, W_TIME };
struct where {
	enum where_kind kind;
	int64_t position;
	uint64_t time_ns;
};
#define WHERE_ENDS 0x1u    /* earliest / latest allowed */
#define WHERE_ANY_POS 0x2u /* any position, not only a multiple of 8 */
int cli_where(const char *opt, const char *s, unsigned flags, struct where *w);
int cli_parse_time(const char *s, uint64_t *ns); /* without the '@'; 0 or -EINVAL */

/* Output formats. */
enum fmt { FMT_LINES = 0, FMT_RAW, FMT_LENPFX, FMT_JSON, FMT_HEX };
#define FMT_IN_MASK ((1u << FMT_LINES) | (1u << FMT_RAW) | (1u << FMT_LENPFX))
#define FMT_ALL_MASK 0x1fu
int cli_format(const char *s, unsigned allowed, enum fmt *out);
/* Write one record; 0, or -errno of the failed write. */
int out_record(FILE *f, enum fmt fmt, const struct spw_record *r);
/* JSON string literal (with quotes) of n bytes that are valid UTF-8. */
void out_json_str(FILE *f, const char *s, size_t n);
bool out_utf8_valid(const uint8_t *p, size_t n);
/* A short preview of a payload: "text" when printable, else hex. */
void out_preview(FILE *f, const uint8_t *p, size_t n, size_t max);

/* Time and sizes for humans. */
void cli_iso8601(uint64_t ns, char *buf, size_t n);  /* 2026-11-24T22:00:00.123456789Z */
void cli_human(uint64_t bytes, char *buf, size_t n); /* 1.5 GiB */
uint64_t cli_now_ns(void);                           /* CLOCK_REALTIME */
uint64_t cli_mono_ns(void);

/* Topic lookups. Open the ring; on failure print why (not found + the create
 * hint, garbage header, permissions, dir problems) and return CLI_ERR. */
int cli_topic_open(const char *name, unsigned flags, struct spw_topic **t);
void cli_not_found(const char *name);
/* An error of taking or keeping a group (-EBUSY: who holds it; -ENOLCK;
 * the lock file's own): what it means and what to do. */
void cli_group_err(const char *topic, const char *group, int e);
/* Does /proc say pid is stopped (SIGSTOP) or stopped by a tracer? */
bool cli_pid_stopped(uint32_t pid);
/* g: spw_group_read's answer for a group. A position file that is there
 * but cannot be read (not -ENOENT, which is "none yet"): says so, naming
 * the file and what_then (the command's way on), and returns true. Never
 * taken for "no position": starting elsewhere would skip or repeat what
 * the group read. */
bool cli_group_unreadable(const char *topic, const char *group, int g, const char *what_then);
/* Does the topic exist (its ring, or its data dir with a topic.conf)? */
bool cli_topic_exists(const char *name, bool *has_ring, bool *has_data);
/* Why producers of a topic wait (its ring is full): no daemon (1; 8 when
 * whether one serves the data dir cannot be told), the
 * daemon cannot write (2, spill_error), a stalled producer (3), plain
 * back-pressure (4), or (checked first) a claim in flight at the tail that
 * newer producers wait for (5, t may be NULL: not checked). The reason's code, and a line in buf. */
int cli_block_reason(struct spw_topic *t, const struct spw_topic_info *in, char *buf, size_t n);
/* verify and dump: the topic must exist (else its not-found message and
 * CLI_ERR); w walks its disk log record by record, each held to the
 * format's bound for its ring (spill/walk.c). CLI_OK or CLI_ERR. */
int cli_log_walker(const char *name, char *dir, size_t dir_len, struct seg_log *w,
		   bool *has_ring, bool *has_data);
int cli_ring_path(char *buf, size_t n, const char *name);
int cli_topic_dir(char *buf, size_t n, const char *name);

/* The topic's spillwayd (t's ring, in: its info). Whether one owns the ring
 * is the kernel's answer (spwd_owned: the lock it holds until it exits), not
 * a PID's; whether it works is its heartbeat's (under ~2 s). */
enum cli_daemon {
	CLI_DAEMON_NEVER,  /* no spillwayd ever attached */
	CLI_DAEMON_GONE,   /* one did; none owns the ring now */
	CLI_DAEMON_UNATTACHED, /* none owns it, but one serves the data dir: it refused
				* the topic (why: the reason it published) or has not
				* seen it yet */
	CLI_DAEMON_SILENT, /* one owns it but has not beaten for 2 s: stopped or hung */
	CLI_DAEMON_ALIVE,
};
/* Room for a line of cli_daemon_why or cli_block_reason (a published
 * reason and two paths). */
#define CLI_WHY_BYTES (SEG_REFUSED_WHY + 2 * PATH_MAX + 256)
/* One look at the topic's daemon: its state, the pid it concerns (the data
 * dir's daemon when UNATTACHED, else the ring header's), the heartbeat's
 * age (-1: none ever) and, when UNATTACHED, the reason the daemon
 * published for refusing the topic ("" none: not seen yet). */
struct cli_daemon_look {
	enum cli_daemon state;
	uint32_t pid;
	double age_s;
	char why[SEG_REFUSED_WHY];
	int served_err; /* NEVER / GONE: -errno when whether a spillwayd serves the
			 * data dir cannot be told (its pid file unreadable) */
	bool other_shm; /* UNATTACHED: it spills another shm dir's rings (why says which) */
	bool why_hidden; /* UNATTACHED: its published reasons cannot be read (why says so) */
};
void cli_daemon_look(const struct spw_topic *t, const struct spw_topic_info *in,
		     struct cli_daemon_look *out);
/* One line: why no working daemon ("no spillwayd has ever attached to it",
 * "no spillwayd holds the topic now ...", "... holds the topic but last beat ..."). */
void cli_daemon_why(const struct cli_daemon_look *d, char *buf, size_t n);
/* Does a spillwayd serve the data dir (G.data_dir)? 1 (*pid its pid, 0 when
 * unknown; shm the shm dir it spills, "" when unknown), 0, or -errno. */
int cli_data_dir_served(uint32_t *pid, char *shm, size_t shm_len);
/* The reason the data dir's spillwayd published for not attaching topic
 * name (<data>/.spillwayd.refused, daemon/topics.c refused_publish), made
 * printable: 1 and why[], 0 (none), or -errno. */
int cli_refusal(const char *name, char *why, size_t n);

/* (A topic dir's disk usage: seg_disk_usage, spill/metrics.h.) */

/* Every topic: rings in the shm dir, topic dirs with a topic.conf in the
 * data dir; sorted, unique, malloc'd. The count, or -1 (error printed). */
int cli_topic_names(char ***names);

/* rm -rf of a topic dir (no symlink following). 0 or -errno. */
int cli_rmtree(const char *path);

/* Reader options from a --from value (and the dirs of G). */
void cli_reader_start(const struct where *w, struct spw_reader_opts *o);
/* A reader that hands the callback only records the library will not take
 * back (tools/reader.c explains the two library bugs it works around). */
struct cli_reader {
	struct spw_reader *r;
	spw_record_fn fn;
	void *arg;
	uint8_t *buf;           /* the pending record's copy */
	size_t cap;
	struct spw_record pend;
	bool have, failed;
	bool skip_corrupt;      /* SPW_READER_SKIP_CORRUPT: skips are recorded, not errors */
	int stop;               /* fn asked to stop: nothing more is handed out */
	uint64_t retracted;     /* deliveries the library took back after a lap */
};
int cli_reader_open(struct cli_reader *cr, const char *topic, const struct spw_reader_opts *o,
		    spw_record_fn fn, void *arg);
void cli_reader_close(struct cli_reader *cr);
/* As spw_reader_poll (wait_ns 0) / spw_reader_poll_wait: > 0 when the reader
 * moved, 0 when caught up, or -errno (also an error the library dropped). */
int cli_reader_poll(struct cli_reader *cr, int max, int64_t wait_ns);

/* Reader errors -> one line. rc is what open/poll returned. */
void cli_reader_err(const char *topic, struct spw_reader *r, int rc, const char *doing);

/* For --from POSITION: CLI_OK, or CLI_ERR with the nearest boundaries. */
int cli_position_check(const char *name, int64_t pos);

/* fork() for a child that must die with us, whatever kills us (stdio
 * flushed first; PR_SET_PDEATHSIG, and a parent already gone is caught).
 * As fork: the child's pid, 0 in the child, -1 on failure. */
pid_t cli_fork_tied(void);

/* A duration for people: "850 ns", "12.50 us", "3.20 ms", "1.50 s". */
void cli_fmt_ns(char *buf, size_t len, double ns);

/* --- pace.c: records at the pace of their timestamps (--speed) ------------------ */
struct cli_pace {
	double speed;        /* 0: as fast as possible */
	uint64_t max_gap_ns; /* longer gaps between records (record time) are shortened */
	bool started;
	uint64_t base_rec, base_wall, prev_rec, cut;
	struct hist late;    /* how late each record went out, ns */
};
/* "1x", "10x", "0.5x", "max" (0). CLI_OK or a usage error. */
int cli_parse_speed(const char *s, double *speed);
void cli_pace_init(struct cli_pace *p, double speed, uint64_t max_gap_ns);
/* Sleep until the record with timestamp ts is due (no-op at speed 0). */
void cli_pace_wait(struct cli_pace *p, uint64_t ts);
/* "spillway CMD: paced at 10x: N records, lateness p50 .., p99 .., max .." */
void cli_pace_report(const struct cli_pace *p, const char *cmd);

/* Flag for SIGINT / SIGTERM (installed by cli_catch_signals, no SA_RESTART). */
extern volatile sig_atomic_t cli_stop;
void cli_catch_signals(void);

/* Subcommands (tools/cmd_*.c). argv[0] is the subcommand's name. */
int cmd_topic(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_demo(int argc, char **argv);
/* Forks worker processes (and spillwayd with --spill); only the calling
 * process returns. */
int cmd_bench(int argc, char **argv);
int cmd_bridge(int argc, char **argv);

#endif
